"""Claims of sessions on their virtual numbers (the rule is in veil.domain.allocator)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from veil.store.tables import number_claims


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
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(number_claims).values(
        [
            {"number_id": number_id, "key": k, "session_id": session_id, "busy_until": busy_until}
            for k in keys
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[number_claims.c.key, number_claims.c.number_id],
        set_={"session_id": stmt.excluded.session_id, "busy_until": stmt.excluded.busy_until},
        where=number_claims.c.busy_until <= now,
    ).returning(number_claims.c.key)
    taken = (await conn.execute(stmt)).scalars().all()
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


async def purge_dead(conn: AsyncConnection, now: datetime) -> int:
    """Delete claims that ended; they no longer constrain anything."""
    result = await conn.execute(delete(number_claims).where(number_claims.c.busy_until <= now))
    return result.rowcount
