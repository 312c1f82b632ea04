"""Claims of sessions on their virtual numbers (the rule is in veil.domain.allocator)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, bindparam, delete, func, select, text, update

from veil.domain.allocator import pin_key
from veil.store.db import Conn
from veil.store.tables import UtcDateTime, number_claims


@functools.cache
def _claim_statement(count: int) -> TextClause:
    """INSERT of ``count`` claims that takes over dead rows and leaves live ones alone.

    Written as text (the same on SQLite and PostgreSQL): SQLAlchemy cannot cache a
    compiled multi-row upsert, and compiling it measured as a fifth of a session create.
    """
    rows = ", ".join(f"(:key{i}, :number_id, :session_id, :busy_until)" for i in range(count))
    return text(
        "INSERT INTO number_claims (key, number_id, session_id, busy_until) "
        f"VALUES {rows} "
        "ON CONFLICT (key, number_id) DO UPDATE "
        "SET session_id = excluded.session_id, busy_until = excluded.busy_until "
        "WHERE number_claims.busy_until <= :now "
        "RETURNING key"
    ).bindparams(bindparam("busy_until", type_=UtcDateTime), bindparam("now", type_=UtcDateTime))


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

    Returns False if some key is live for another session: the caller must roll back.
    """
    if not keys:
        return True
    params: dict[str, Any] = {
        "number_id": number_id,
        "session_id": session_id,
        "busy_until": busy_until,
        "now": now,
    }
    params.update({f"key{i}": key for i, key in enumerate(keys)})
    statement = _claim_statement(len(keys))
    taken = (await conn.execute(statement, params)).scalars().all()
    return len(taken) == len(keys)


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
