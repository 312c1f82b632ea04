"""Virtual number repository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from veil.domain.numbers import VirtualNumber
from veil.store.db import Conn
from veil.store.tables import accounts, numbers, sessions

_sub = accounts.alias("sub")


def _select() -> Select[Any]:
    return select(numbers, func.coalesce(_sub.c.auth_id, "").label("subaccount")).outerjoin(
        _sub, _sub.c.id == numbers.c.subaccount_id
    )


def _number(row: Any) -> VirtualNumber:
    return VirtualNumber(**row._mapping)


async def insert_numbers(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(insert(numbers), list(rows))


async def existing(conn: Conn, e164s: Sequence[str]) -> list[str]:
    """Which of these numbers are already in some account's pool."""
    result = await conn.execute(select(numbers.c.e164).where(numbers.c.e164.in_(e164s)))
    return list(result.scalars())


async def get_number(conn: Conn, e164: str) -> VirtualNumber | None:
    row = (await conn.execute(_select().where(numbers.c.e164 == e164))).first()
    return _number(row) if row else None


async def list_numbers(
    conn: Conn,
    *,
    account_id: int | None,
    subaccount_id: int | None = None,
    starts_with: str | None = None,
    alias: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[VirtualNumber], int]:
    """An account's numbers (all accounts' when ``account_id`` is None), newest first."""
    where: list[ColumnElement[bool]] = []
    if account_id is not None:
        where.append(numbers.c.account_id == account_id)
    if subaccount_id is not None:
        where.append(numbers.c.subaccount_id == subaccount_id)
    if starts_with:
        where.append(numbers.c.e164.startswith("+" + starts_with.lstrip("+"), autoescape=True))
    if alias:
        where.append(numbers.c.alias == alias)
    total = (
        await conn.execute(select(func.count()).select_from(numbers).where(*where))
    ).scalar_one()
    query = _select().where(*where).order_by(numbers.c.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_number(r) for r in (await conn.execute(query)).all()], int(total)


async def update_number(conn: Conn, number_id: int, **values: Any) -> None:
    await conn.execute(update(numbers).where(numbers.c.id == number_id).values(**values))


async def delete_number(conn: Conn, number_id: int) -> None:
    await conn.execute(delete(numbers).where(numbers.c.id == number_id))


async def active_session_count(conn: Conn, number_id: int, now: datetime) -> int:
    """Sessions on this number that are not expired (whatever the sweeper has done)."""
    result = await conn.execute(
        select(func.count())
        .select_from(sessions)
        .where(
            sessions.c.number_id == number_id,
            sessions.c.status != "expired",
            sessions.c.expiry_time > now,
        )
    )
    return int(result.scalar_one())
