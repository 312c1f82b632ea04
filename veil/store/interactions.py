"""Interactions: the calls through a session, stored when each call ends."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, select

from veil.domain.session import InteractionRecord, Session
from veil.store.db import Conn
from veil.store.tables import interactions

_INSERT = insert(interactions)
_FIELDS = [f for f in InteractionRecord.__dataclass_fields__]


async def insert_interaction(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(_INSERT, values)


async def attach(conn: Conn, sessions: Sequence[Session]) -> list[Session]:
    """The sessions with their interactions, in one query for all of them. Sessions
    that never had a call are not looked up."""
    ids = [s.id for s in sessions if s.last_interaction_time is not None]
    if not ids:
        return list(sessions)
    rows = (
        await conn.execute(
            select(interactions)
            .where(interactions.c.session_id.in_(ids))
            .order_by(interactions.c.session_id, interactions.c.id)
        )
    ).all()
    found: dict[int, list[InteractionRecord]] = defaultdict(list)
    for row in rows:
        m = row._mapping
        found[m["session_id"]].append(InteractionRecord(**{f: m[f] for f in _FIELDS}))
    return [replace(s, interactions=tuple(found.get(s.id, ()))) for s in sessions]
