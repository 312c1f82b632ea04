"""Session repository, including the queries behind allocation."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.sql.selectable import CTE, CompoundSelect, ScalarSelect, Select
from sqlalchemy.sql.sqltypes import NullType

from veil.domain.allocator import LOAD_CLAIMS
from veil.domain.list_filters import Bound, SessionFilter
from veil.domain.session import Session, Status
from veil.domain.session_params import SETTINGS_FIELDS, SessionSettings
from veil.store import claims
from veil.store.db import Conn, Hot
from veil.store.paging import bound_clause, newest_first
from veil.store.tables import number_claims, numbers, sessions

_SETTINGS_COLUMNS = [sessions.c[name] for name in SETTINGS_FIELDS]
_BASE_FIELDS = (
    "id",
    "uuid",
    "account_id",
    "main_account_id",
    "subaccount",
    "number_id",
    "virtual_number",
    "first_party",
    "second_party",
    "created_time",
    "modified_time",
    "expiry_time",
    "duration",
    "total_call_count",
    "total_call_billed_duration",
    "last_interaction_time",
)


def session_from_row(row: Any) -> Session:
    return session_from_mapping(row._mapping)


def session_from_mapping(m: Mapping[str, Any]) -> Session:
    return Session(
        status=Status(m["status"]),
        settings=SessionSettings(**{name: m[name] for name in SETTINGS_FIELDS}),
        **{name: m[name] for name in _BASE_FIELDS},
    )


# The hot statements are built once, with bound parameters: building a statement (and
# its cache key) per request measured as a tenth of a session create.
_BY_UUID = select(sessions).where(sessions.c.uuid == bindparam("uuid"))
_UPDATE = update(sessions).where(sessions.c.id == bindparam("session_id_")).returning(*sessions.c)


async def insert_claiming(
    conn: Conn, values: dict[str, Any], *, keys: Sequence[str], busy_until: datetime, now: datetime
) -> Session | None:
    """Insert a session and claim ``keys`` for it on its number (``claims.claim``); None
    when a key is live for another session or the number left the session pool: the
    caller must roll back. On PostgreSQL both are one statement (one round trip)."""
    number_id = values["number_id"]
    row = _DEFAULTS | values
    if conn.dialect.name != "postgresql" or not keys:
        (inserted,) = await conn.fetch(_insert_session(tuple(row)), row)
        session = session_from_mapping(inserted)
        taken = await claims.claim(
            conn,
            number_id=number_id,
            keys=keys,
            session_id=session.id,
            busy_until=busy_until,
            now=now,
        )
        return session if taken else None
    statement = _insert_claiming(tuple(row), len(keys))
    params = row | claims.claim_params(
        number_id=number_id, keys=keys, busy_until=busy_until, now=now
    )
    (found,) = await conn.fetch(statement, params)
    return session_from_mapping(found) if found["claimed"] == len(keys) else None


# Python-side column defaults, which a text INSERT must spell out.
_DEFAULTS = {
    c.name: c.default.arg for c in sessions.c if isinstance(c.default, ScalarElementColumnDefault)
}


def _values(names: tuple[str, ...]) -> tuple[str, list[BindParameter[Any]]]:
    """``(names) VALUES (:names)`` of a session INSERT, and its typed parameters."""
    sql = f"({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
    return sql, [bindparam(n, type_=sessions.c[n].type) for n in names]


@functools.cache
def _insert_session(names: tuple[str, ...]) -> Hot:
    sql, typed = _values(names)
    return Hot(
        text(f"INSERT INTO sessions {sql} RETURNING *").bindparams(*typed).columns(*sessions.c)
    )


@functools.cache
def _insert_claiming(names: tuple[str, ...], count: int) -> Hot:
    """PostgreSQL: the session INSERT and its claims in one statement (data-modifying CTEs;
    the claims' foreign key is checked at the end of the statement, after both)."""
    claiming = claims.claim_sql(count, session_id="(SELECT id FROM s)", postgresql=True)
    values, typed = _values(names)
    sql = (
        f"WITH s AS (INSERT INTO sessions {values} RETURNING *), "
        f"c AS ({claiming}) "
        "SELECT s.*, (SELECT count(*) FROM c) AS claimed FROM s"
    )
    return Hot(
        text(sql)
        .bindparams(*typed, *claims.CLAIM_TYPES)
        .columns(*sessions.c, column("claimed", Integer))
    )


async def get_session(conn: Conn, uuid: str) -> Session | None:
    row = (await conn.execute(_BY_UUID, {"uuid": uuid})).first()
    return session_from_row(row) if row else None


async def update_session(conn: Conn, session_id: int, values: dict[str, Any]) -> Session:
    """Set the given columns (the SET clause is the keys of ``values``)."""
    result = await conn.execute(_UPDATE, {"session_id_": session_id, **values})
    return session_from_row(result.one())


async def next_event_sequence(conn: Conn, session_id: int) -> int:
    """Hand out the session's next callback SequenceNumber (1, 2, ...)."""
    result = await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(event_sequence=sessions.c.event_sequence + 1)
        .returning(sessions.c.event_sequence)
    )
    return int(result.scalar_one())


def _status_clause(status: Status, now: datetime) -> ColumnElement[bool]:
    if status is Status.EXPIRED:
        return or_(sessions.c.status == Status.EXPIRED.value, sessions.c.expiry_time <= now)
    return and_(sessions.c.status == status.value, sessions.c.expiry_time > now)


def _bound_clause(bound: Bound) -> ColumnElement[bool]:
    column: Any = sessions.c[bound.column]
    if bound.column == "duration":
        column = cast(column, BigInteger)  # filter values may exceed a 32-bit integer
    return bound_clause(column, bound)


async def list_sessions(
    conn: Conn,
    *,
    main_account_id: int,
    account_id: int | None,
    filters: SessionFilter,
    now: datetime,
) -> tuple[list[Session], int]:
    """Sessions of a main account (or only of ``account_id``), newest first, with the total."""
    where: list[ColumnElement[bool]] = [sessions.c.main_account_id == main_account_id]
    if account_id is not None:
        where.append(sessions.c.account_id == account_id)
    for name in ("first_party", "second_party", "virtual_number"):
        value = getattr(filters, name)
        if value is not None:
            where.append(sessions.c[name] == value)
    if filters.status is not None:
        where.append(_status_clause(filters.status, now))
    where.extend(_bound_clause(b) for b in filters.bounds)
    rows, total = await newest_first(
        conn,
        select(sessions),
        sessions,
        where,
        sessions.c.created_time,
        limit=filters.limit,
        offset=filters.offset,
    )
    return [session_from_row(r) for r in rows], total


class epoch_seconds(FunctionElement[int]):
    """A timestamp's whole seconds since 1970 (UTC), in SQL."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds)  # PostgreSQL, and the default for printing a statement
@compiles(epoch_seconds, "postgresql")
def _epoch_seconds_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # date_part is double precision (its floor is exact to the second at today's epochs);
    # EXTRACT is numeric, and twice as slow over the few hundred claims of a busy number.
    return f"CAST(FLOOR(date_part('epoch', {compiler.process(element.clauses, **kw)})) AS BIGINT)"


class owned_by(FunctionElement[Any]):
    """``column = value``, for a column that leads the ORDER BY of an index-ordered read:
    a pool's owner (its numbers in id order), or a claim's number (its load, last ending
    first).

    PostgreSQL gets it as the range ``column >= value AND column <= value``: with =, the
    planner drops the column from ``ORDER BY column, id`` as a constant, and then a plan
    made without the parameters (the generic plan) may take the order from the primary
    key, expecting the pool to be a share of every number, and walk it through the
    other pools' numbers (3 ms per allocation behind a 20,000-number account). As a
    range, only the pool's own index yields the order. SQLite, which plans every
    statement with its values, picks that index for = and not for the range.
    """

    type = NullType()  # not Boolean: SQLite would get "... = 1" around it, and no index
    inherit_cache = True


@compiles(owned_by)
def _owned_by(element: owned_by, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} = {value}"


@compiles(owned_by, "postgresql")
def _owned_by_postgresql(element: owned_by, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} >= {value} AND {column} <= {value})"


def _overlap_load() -> ScalarSelect[Any]:
    """veil.domain.allocator.overlap_load of the outer query's number, summed in SQL so
    that one row per candidate comes back, over at most LOAD_CLAIMS of its claims (read
    from ix_number_claims_number_busy, last ending first) however many it holds."""
    held = (
        select(number_claims.c.busy_until)
        .where(
            owned_by(number_claims.c.number_id, numbers.c.id),
            number_claims.c.busy_until > bindparam("now"),
        )
        .order_by(number_claims.c.number_id.desc(), number_claims.c.busy_until.desc())
        .limit(literal_column(str(LOAD_CLAIMS), Integer))
        .correlate(numbers)
        .subquery("held")
    )
    end = case(
        (held.c.busy_until >= bindparam("horizon"), bindparam("horizon_s")),
        else_=epoch_seconds(held.c.busy_until),
    )
    return select(func.coalesce(func.sum(end - bindparam("now_s")), 0)).scalar_subquery()


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a free-numbers statement is built for: one statement per shape."""

    scoped: bool  # a subaccount's pool
    by_country: bool  # geomatch
    with_pair: bool  # both parties known: the pair's previous number may come first
    keys: int
    limit: int


@functools.cache
def _free_numbers_query(shape: _Shape) -> Hot:
    return Hot(_candidates(shape))


def _candidates(shape: _Shape) -> Select[Any] | CompoundSelect[Any]:
    """The free numbers: the first ``limit`` in id order with their loads and, given a
    pair, the pair's previous number (``sticky``) if it is free."""
    scoped, by_country, keys, limit = shape.scoped, shape.by_country, shape.keys, shape.limit
    # One statement per shape, with the keys and the limit written in: an expanding IN
    # or a literal_execute limit is re-rendered at every execution (measured as a tenth
    # of an allocation on PostgreSQL).
    busy = select(number_claims.c.number_id).where(
        number_claims.c.key.in_([bindparam(f"key{i}") for i in range(keys)]),
        number_claims.c.busy_until > bindparam("now"),
    )
    # The pool's numbers in id order from its own index (ix_numbers_*_order), read until
    # ``limit`` rows are found; the load is summed for those only. ``owned_by`` leads
    # the ORDER BY so that no other index can yield the order (see there).
    owner = numbers.c.subaccount_id if scoped else numbers.c.account_id
    value: BindParameter[int] = bindparam("sub" if scoped else "account")
    # A subaccount's numbers all belong to its main account (numbers.add_numbers): the
    # scoped shape names the subaccount alone, so that its index is the only one to use.
    where: list[ColumnElement[bool]] = [
        owned_by(owner, value),
        *([] if scoped else [numbers.c.subaccount_id.is_(None)]),
        numbers.c.reserved.is_(False),
        numbers.c.masking_config_id.is_(None),  # owned by an Infobip configuration
        numbers.c.id.not_in(busy),
    ]
    if by_country:
        where.append(numbers.c.country == bindparam("country"))
    columns = (numbers.c.id, numbers.c.e164, _overlap_load().label("load"))
    first = (
        select(*columns, literal(0).label("sticky"))
        .where(*where)
        .order_by(owner, numbers.c.id)
        .limit(literal_column(str(limit), Integer))
    )
    if not shape.with_pair:
        return first
    # And, in the same round trip, the number of the pair's latest session if it is free.
    latest = (
        select(sessions.c.number_id)
        .where(
            sessions.c.main_account_id == bindparam("account"),
            sessions.c.pair_key == bindparam("pair"),
        )
        .order_by(sessions.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    # Its load is not summed: the sticky number comes first whatever its load.
    sticky = select(
        numbers.c.id, numbers.c.e164, literal(0).label("load"), literal(1).label("sticky")
    ).where(*where, numbers.c.id == latest)
    return union_all(sticky, select(first.subquery()))


# How PostgreSQL plans an allocation's statements (``Database.lock_keys``, local to its
# transaction):
# - once per connection (a generic plan): planning the candidates took longer than
#   running them, and the owner range and the pools' indexes make one plan suit every
#   pool;
# - every order from an index: a generic plan is made without the parameters, and
#   without statistics (a new database, before autovacuum's first ANALYZE) the planner
#   read a number's load by fetching all its claims and sorting them, a row per session
#   on a number that holds them all; with statistics it walked every number's claims in
#   time order. The composite index yields the load's order directly. The one sort
#   left, of the few candidates by rank, has no alternative and stays, at the huge
#   estimated cost "off" gives it;
# - no JIT compilation, which that estimate would start: it took 0.6 s per allocation,
#   for a statement that runs in a fraction of a millisecond.
ALLOCATION_PLANNER = {
    "plan_cache_mode": "force_generic_plan",
    "enable_sort": "off",
    "jit": "off",
}


@dataclass(frozen=True, slots=True)
class FreeNumberQuery:
    """Which numbers a new session may take: in scope and with none of ``keys`` claimed;
    each one's load is measured until ``horizon`` (the new session's busy_until)."""

    account_id: int
    subaccount_id: int | None
    country: str | None
    keys: Sequence[str]
    now: datetime
    horizon: datetime


@dataclass(frozen=True, slots=True)
class FreeNumber:
    id: int
    e164: str
    load: int  # veil.domain.allocator.overlap_load
    sticky: bool  # the number of the pair's latest session


async def free_numbers(
    conn: Conn, query: FreeNumberQuery, *, limit: int, pair: str = ""
) -> list[FreeNumber]:
    """The first ``limit`` free numbers in id order and, given a ``pair`` (``pair_key``),
    the number of that pair's latest session when it is free too (``sticky``): for an
    allocation that ranks them itself (PINs that Veil generates depend on the number).
    ``insert_on_best_number`` chooses among the same numbers in SQL."""
    statement = _free_numbers_query(_shape_of(query, limit=limit, pair=pair))
    rows = await conn.fetch(statement, _candidate_params(query, pair))
    return [
        FreeNumber(row["id"], row["e164"], int(row["load"]), bool(row["sticky"])) for row in rows
    ]


def _shape_of(query: FreeNumberQuery, *, limit: int, pair: str) -> _Shape:
    return _Shape(
        scoped=query.subaccount_id is not None,
        by_country=query.country is not None,
        with_pair=bool(pair),
        keys=len(query.keys),
        limit=limit,
    )


def _candidate_params(query: FreeNumberQuery, pair: str) -> dict[str, Any]:
    return {
        **{f"key{i}": key for i, key in enumerate(query.keys)},
        "now": query.now,
        "now_s": whole_seconds(query.now),
        "horizon": query.horizon,
        "horizon_s": whole_seconds(query.horizon),
        "account": query.account_id,
        "sub": query.subaccount_id,
        "country": query.country,
        "pair": pair,
    }


@dataclass(frozen=True, slots=True)
class Placed:
    """A session stored on a number, and whether it claimed all its keys there (False: a
    concurrent session took one first, or the number left the pool; roll back)."""

    session: Session
    claimed: bool


async def insert_on_best_number(
    conn: Conn,
    query: FreeNumberQuery,
    values: dict[str, Any],
    *,
    limit: int,
    pair: str,
    busy_until: datetime,
) -> Placed | None:
    """Store a session (``values``, without its number) on the free number that
    ``rank_numbers`` puts first among those ``free_numbers`` finds, claiming
    ``query.keys`` on it until ``busy_until``; None when no number is free.

    The choice is made in SQL, by the statement that inserts: on PostgreSQL the whole
    allocation after the locks is one statement (one round trip); on SQLite the
    session's INSERT and then its claims."""
    shape = _shape_of(query, limit=limit, pair=pair)
    row = _DEFAULTS | values
    params = _candidate_params(query, pair) | row | {"busy_until": busy_until}
    if conn.dialect.name == "postgresql" and query.keys:
        found = await conn.fetch(_place_claiming(shape, tuple(row)), params)
        if not found:
            return None
        return Placed(session_from_mapping(found[0]), found[0]["claimed"] == len(query.keys))
    found = await conn.fetch(_place(shape, tuple(row)), params)
    if not found:
        return None
    session = session_from_mapping(found[0])
    assert session.number_id is not None
    taken = await claims.claim(
        conn,
        number_id=session.number_id,
        keys=query.keys,
        session_id=session.id,
        busy_until=busy_until,
        now=query.now,
    )
    return Placed(session, taken)


def _chosen(shape: _Shape) -> CTE:
    """The first of the free numbers in ``veil.domain.allocator.rank_numbers``' order:
    the pair's previous number, then the most loaded, then the lowest id."""
    found = _candidates(shape).cte("candidates")
    return (
        select(found.c.id, found.c.e164)
        .order_by(found.c.sticky.desc(), found.c.load.desc(), found.c.id)
        .limit(literal_column("1", Integer))
        .cte("chosen")
    )


def _session_on(chosen: CTE, names: tuple[str, ...]) -> Any:
    """INSERT of a session (``names``, its parameters) on the chosen number."""
    typed = [bindparam(n, type_=sessions.c[n].type) for n in names]
    return (
        insert(sessions)
        .from_select(
            [*names, "number_id", "virtual_number"], select(*typed, chosen.c.id, chosen.c.e164)
        )
        .returning(*sessions.c)
    )


@functools.cache
def _place(shape: _Shape, names: tuple[str, ...]) -> Hot:
    return Hot(_session_on(_chosen(shape), names))


@functools.cache
def _place_claiming(shape: _Shape, names: tuple[str, ...]) -> Hot:
    """PostgreSQL: the choice, the session and its claims (``claims.claim_sql``) in one
    statement, of data-modifying CTEs."""
    s = _session_on(_chosen(shape), names).cte("s")
    claiming = claims.claim_sql(
        shape.keys,
        session_id="(SELECT id FROM s)",
        number_id="(SELECT number_id FROM s)",
        postgresql=True,
    )
    taken = text(claiming).bindparams(*claims.CLAIM_TYPES).columns(column("key", String)).cte("c")
    claimed = select(func.count()).select_from(taken).scalar_subquery()
    # The claims' text names s: the WITH clause must list s first.
    return Hot(select(s, claimed.label("claimed")).add_cte(s, taken))


def whole_seconds(moment: datetime) -> int:
    """``epoch_seconds`` in Python."""
    return math.floor(moment.timestamp())


async def due_for_expiry(conn: Conn, now: datetime, limit: int) -> list[Session]:
    """Sessions whose expiry has passed but that are not marked expired yet."""
    rows = (
        await conn.execute(
            select(sessions)
            .where(sessions.c.status != Status.EXPIRED.value, sessions.c.expiry_time <= now)
            .order_by(sessions.c.expiry_time)
            .limit(limit)
        )
    ).all()
    return [session_from_row(r) for r in rows]


async def mark_expired(conn: Conn, session_id: int, now: datetime) -> bool:
    """Mark a time-expired session expired; False if another worker already did."""
    result = await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.status != Status.EXPIRED.value)
        .values(status=Status.EXPIRED.value, modified_time=now)
    )
    return result.rowcount == 1
