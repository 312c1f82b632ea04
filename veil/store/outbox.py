"""The transactional outbox: callbacks stored with the change they report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert

from veil.domain.events import Callback
from veil.domain.ids import new_uuid
from veil.domain.session import Session
from veil.store.db import Conn
from veil.store.sessions import next_event_sequence
from veil.store.tables import outbox


async def enqueue(
    conn: Conn,
    *,
    account_id: int,
    session_id: int | None,
    sequence: int,
    callback: Callback,
    now: datetime,
) -> str:
    """Store one callback for delivery; returns its event id."""
    event_id = new_uuid()
    await conn.execute(
        insert(outbox).values(
            event_id=event_id,
            account_id=account_id,
            session_id=session_id,
            sequence=sequence,
            event=callback.event,
            url=callback.url,
            method=callback.method,
            payload=orjson.dumps(callback.params).decode(),
            status="pending",
            attempts=0,
            next_attempt_time=now,
            created_time=now,
        )
    )
    return event_id


async def enqueue_json(
    conn: Conn,
    *,
    account_id: int,
    event: str,
    url: str,
    backup_url: str,
    body: dict[str, Any],
    now: datetime,
) -> str:
    """Store one Infobip-style report (a JSON POST, Infobip's signature) for delivery."""
    event_id = new_uuid()
    await conn.execute(
        insert(outbox).values(
            event_id=event_id,
            account_id=account_id,
            session_id=None,
            sequence=0,
            event=event,
            url=url,
            backup_url=backup_url or None,
            method="POST",
            payload=orjson.dumps(body).decode(),
            format="infobip",
            status="pending",
            attempts=0,
            next_attempt_time=now,
            created_time=now,
        )
    )
    return event_id


async def enqueue_session_event(
    conn: Conn, session: Session, now: datetime, build: Callable[[int], Callback | None]
) -> None:
    """One callback of ``session``, numbered in the session's sequence: ``build`` gets
    the SequenceNumber and gives the callback (None: nothing to send)."""
    sequence = await next_event_sequence(conn, session.id)
    callback = build(sequence)
    if callback is not None:
        await enqueue(
            conn,
            account_id=session.account_id,
            session_id=session.id,
            sequence=sequence,
            callback=callback,
            now=now,
        )
