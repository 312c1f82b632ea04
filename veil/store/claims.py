"""Claims of sessions on their virtual numbers (the rule is in veil.domain.allocator)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from veil.domain.allocator import pin_key
from veil.store.tables import number_claims


@functools.cache
def _claim_statement(dialect_name: str, count: int) -> Any:
    """INSERT of ``count`` claims that takes over dead rows and leaves live ones alone."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(number_claims).values(
        [
            {
                "number_id": bindparam("number_id"),
                "key": bindparam(f"key{i}"),
                "session_id": bindparam("session_id"),
                "busy_until": bindparam("busy_until"),
            }
            for i in range(count)
        ]
    )
    return stmt.on_conflict_do_update(
        index_elements=[number_claims.c.key, number_claims.c.number_id],
        set_={"session_id": stmt.excluded.session_id, "busy_until": stmt.excluded.busy_until},
        where=number_claims.c.busy_until <= bindparam("now"),
    ).returning(number_claims.c.key)


async def claim(
    conn: AsyncConnection,
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
    statement = _claim_statement(conn.dialect.name, len(keys))
    taken = (await conn.execute(statement, params)).scalars().all()
    return len(taken) == len(keys)


async def set_busy_until(conn: AsyncConnection, session_id: int, busy_until: datetime) -> None:
    await conn.execute(
        update(number_claims)
        .where(number_claims.c.session_id == session_id)
        .values(busy_until=busy_until)
    )


async def release(conn: AsyncConnection, session_id: int, key: str) -> None:
    await conn.execute(
        delete(number_claims).where(
            number_claims.c.session_id == session_id, number_claims.c.key == key
        )
    )


async def session_on(
    conn: AsyncConnection, *, number_id: int, key: str, now: datetime
) -> int | None:
    """The session holding a live claim of ``key`` on the number (call routing)."""
    result = await conn.execute(
        select(number_claims.c.session_id).where(
            number_claims.c.number_id == number_id,
            number_claims.c.key == key,
            number_claims.c.busy_until > now,
        )
    )
    return result.scalar()


async def live_pins(
    conn: AsyncConnection, *, number_id: int, length: int, now: datetime
) -> list[str]:
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


async def purge_dead(conn: AsyncConnection, now: datetime) -> int:
    """Delete claims that ended; they no longer constrain anything."""
    result = await conn.execute(delete(number_claims).where(number_claims.c.busy_until <= now))
    return result.rowcount
