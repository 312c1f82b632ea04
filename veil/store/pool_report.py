"""The queries behind the operator's pool report (veil.domain.pool_report).

Each answers for every pool in a scope at once, grouped in SQL: one statement per
figure, never one per number or per pool.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.sql.elements import ColumnElement

from veil.domain.allocator import party_key
from veil.domain.session import Status
from veil.domain.session_params import COOLOFF_PERIOD
from veil.store.db import Conn
from veil.store.tables import accounts, number_claims, numbers, sessions


@dataclass(frozen=True, slots=True)
class PoolKey:
    account_id: int  # the main account
    subaccount_id: int | None  # the scope; None for the main account's own numbers
    country: str


@dataclass(frozen=True, slots=True)
class Scope:
    """Which pools to report on."""

    account_id: int | None = None  # a main account; None: every account (operator)
    subaccount_id: int | None = None  # only this subaccount's pools; None: all scopes


@dataclass(frozen=True, slots=True)
class WindowSession:
    """A session that held a number of ``pool`` at some time in the window."""

    pool: PoolKey
    created_time: datetime
    expiry_time: datetime
    cooloff: int  # seconds
    first_party: str
    second_party: str


_POOL_COLUMNS = (numbers.c.account_id, numbers.c.subaccount_id, numbers.c.country)


def _key(row: Any) -> PoolKey:
    return PoolKey(row.account_id, row.subaccount_id, row.country)


def _in_scope(scope: Scope) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if scope.account_id is not None:
        where.append(numbers.c.account_id == scope.account_id)
    if scope.subaccount_id is not None:
        where.append(numbers.c.subaccount_id == scope.subaccount_id)
    return where


def _pooled(scope: Scope) -> list[ColumnElement[bool]]:
    """Numbers that automatic allocation may hand out (the allocator's own filter)."""
    return [
        *_in_scope(scope),
        numbers.c.reserved.is_(False),
        numbers.c.masking_config_id.is_(None),
    ]


async def pool_sizes(conn: Conn, scope: Scope) -> dict[PoolKey, int]:
    query = (
        select(*_POOL_COLUMNS, func.count().label("size"))
        .where(*_pooled(scope))
        .group_by(*_POOL_COLUMNS)
    )
    return {_key(row): int(row.size) for row in await conn.execute(query)}


def _live_claims(scope: Scope, now: datetime, *columns: Any) -> Select[Any]:
    # Starts from the busy_until index: only live claims are read, however many dead
    # ones the sweeper has not purged yet.
    return (
        select(*_POOL_COLUMNS, *columns)
        .select_from(number_claims)
        .join(numbers, numbers.c.id == number_claims.c.number_id)
        .where(number_claims.c.busy_until > now, *_pooled(scope))
    )


async def numbers_in_use(conn: Conn, scope: Scope, now: datetime) -> dict[PoolKey, int]:
    """How many numbers of each pool hold at least one live claim."""
    query = _live_claims(
        scope, now, func.count(distinct(number_claims.c.number_id)).label("used")
    ).group_by(*_POOL_COLUMNS)
    return {_key(row): int(row.used) for row in await conn.execute(query)}


async def busiest_party_now(conn: Conn, scope: Scope, now: datetime) -> dict[PoolKey, int]:
    """N now: the most live claims one party holds on a pool's numbers."""
    per_party = (
        _live_claims(scope, now, func.count().label("held"))
        .where(number_claims.c.key.startswith(party_key(""), autoescape=True))
        .group_by(*_POOL_COLUMNS, number_claims.c.key)
        .subquery()
    )
    pool = (per_party.c.account_id, per_party.c.subaccount_id, per_party.c.country)
    query = select(*pool, func.max(per_party.c.held).label("most")).group_by(*pool)
    return {_key(row): int(row.most) for row in await conn.execute(query)}


async def window_sessions(conn: Conn, scope: Scope, since: datetime) -> list[WindowSession]:
    """Sessions on the scope's numbers whose expiry is late enough that they may have held
    their number after ``since`` (the caller adds each one's own cool-off to be exact),
    oldest first.

    Every status is named so that both databases can range-scan the (status, expiry_time)
    index for the recent expiries, rather than read every session the numbers ever had.
    Numbers are not filtered on reservation or ownership: traffic that a number now
    reserved carried still wants a number of its pool.
    """
    earliest = since - timedelta(seconds=COOLOFF_PERIOD.high)
    query = (
        select(
            *_POOL_COLUMNS,
            sessions.c.created_time,
            sessions.c.expiry_time,
            sessions.c.virtual_number_cooloff_period.label("cooloff"),
            sessions.c.first_party,
            sessions.c.second_party,
        )
        .select_from(sessions)
        .join(numbers, numbers.c.id == sessions.c.number_id)
        .where(
            sessions.c.status.in_([s.value for s in Status]),
            sessions.c.expiry_time > earliest,
            *_in_scope(scope),
        )
        .order_by(sessions.c.created_time, sessions.c.id)
    )
    return [
        WindowSession(
            _key(row),
            row.created_time,
            row.expiry_time,
            int(row.cooloff),
            row.first_party,
            row.second_party,
        )
        for row in await conn.execute(query)
    ]


async def auth_ids(conn: Conn, account_ids: Iterable[int]) -> dict[int, str]:
    """The auth_id of each of these accounts."""
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    query = select(accounts.c.id, accounts.c.auth_id).where(accounts.c.id.in_(wanted))
    return {row.id: row.auth_id for row in await conn.execute(query)}
