"""Claims of sessions on their virtual numbers (the rule is in veil.domain.allocator)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, column, delete, func, select, text, update

from veil.domain.allocator import pin_key
from veil.store.db import Conn, Hot
from veil.store.tables import UtcDateTime, number_claims


def claim_sql(
    count: int, *, session_id: str, postgresql: bool, number_id: str = ":number_id"
) -> str:
    """INSERT of ``count`` claims (``:key0``...) that takes over dead rows and leaves live
    ones alone, and inserts nothing once the number has left the session pool.

    ``session_id`` and ``number_id`` are the SQL of the claiming session's id and of its
    number's. On PostgreSQL the pool check
    takes a key-share lock on the number: a concurrent transaction that gives the number
    to an Infobip configuration holds the row (``SELECT ... FOR UPDATE``), so this waits
    for it and then re-checks the row it committed. SQLite runs writers one at a time.
    """
    keys = " UNION ALL ".join(f"SELECT :key{i} AS key" for i in range(count))
    lock = " FOR KEY SHARE" if postgresql else ""
    return (
        "INSERT INTO number_claims (key, number_id, session_id, busy_until) "
        f"SELECT k.key, {number_id}, {session_id}, :busy_until FROM ({keys}) AS k "
        f"WHERE EXISTS (SELECT 1 FROM numbers WHERE numbers.id = {number_id} "
        f"AND numbers.masking_config_id IS NULL{lock}) "
        "ON CONFLICT (key, number_id) DO UPDATE "
        "SET session_id = excluded.session_id, busy_until = excluded.busy_until "
        "WHERE number_claims.busy_until <= :now "
        "RETURNING key"
    )


def claim_params(
    *, number_id: int, keys: Sequence[str], busy_until: datetime, now: datetime
) -> dict[str, Any]:
    params: dict[str, Any] = {"number_id": number_id, "busy_until": busy_until, "now": now}
    params.update({f"key{i}": key for i, key in enumerate(keys)})
    return params


CLAIM_TYPES = (bindparam("busy_until", type_=UtcDateTime), bindparam("now", type_=UtcDateTime))


@functools.cache
def _claim_statement(count: int, postgresql: bool) -> Hot:
    # Text (one per count and dialect): SQLAlchemy cannot cache a compiled multi-row
    # upsert, and compiling it measured as a fifth of a session create.
    sql = claim_sql(count, session_id=":session_id", postgresql=postgresql)
    return Hot(text(sql).bindparams(*CLAIM_TYPES).columns(column("key", String)))


async def claim(
    conn: Conn,
    *,
    number_id: int,
    keys: Sequence[str],
    session_id: int,
    busy_until: datetime,
    now: datetime,
) -> bool:
    """Claim every key on the number for the session, atomically with respect to other
    transactions. A dead claim (``busy_until <= now``) is taken over; a live one is not.

    Returns False if some key is live for another session, or the number no longer
    belongs to the session pool: the caller must roll back.
    """
    if not keys:
        return True
    params = claim_params(number_id=number_id, keys=keys, busy_until=busy_until, now=now)
    params["session_id"] = session_id
    statement = _claim_statement(len(keys), conn.dialect.name == "postgresql")
    return len(await conn.fetch(statement, params)) == len(keys)


async def set_busy_until(conn: Conn, session_id: int, busy_until: datetime) -> None:
    await conn.execute(
        update(number_claims)
        .where(number_claims.c.session_id == session_id)
        .values(busy_until=busy_until)
    )


async def release(conn: Conn, session_id: int, key: str) -> None:
    await conn.execute(
        delete(number_claims).where(
            number_claims.c.session_id == session_id, number_claims.c.key == key
        )
    )


async def live_pins(conn: Conn, *, number_id: int, length: int, now: datetime) -> list[str]:
    """The PINs of ``length`` digits held on a number by live claims."""
    prefix = pin_key("")
    result = await conn.execute(
        select(number_claims.c.key).where(
            number_claims.c.number_id == number_id,
            number_claims.c.key.startswith(prefix, autoescape=True),
            func.length(number_claims.c.key) == len(prefix) + length,
            number_claims.c.busy_until > now,
        )
    )
    return [key[len(prefix) :] for key in result.scalars()]


async def purge_dead(conn: Conn, now: datetime) -> int:
    """Delete claims that ended; they no longer constrain anything."""
    result = await conn.execute(delete(number_claims).where(number_claims.c.busy_until <= now))
    return result.rowcount
