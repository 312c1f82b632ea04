"""Delivery of the outbox: claiming due rows, recording attempts, settling rows.

Claiming is one statement: ``UPDATE outbox SET lease ... WHERE id IN (SELECT ... LIMIT n)``.
A row is due when it is pending, its next attempt time has come, no worker holds a live
lease on it, and it is the head of its session's queue (no earlier row of the same
session is still pending: order is kept per session). Rows without a session are
independent.

- **PostgreSQL**: the inner select takes ``FOR UPDATE SKIP LOCKED``, so workers on
  several nodes claiming at once each get different rows without waiting on each other;
  the lease then keeps the row theirs after the claim commits, while it is being sent.
- **SQLite**: writers are serial (``Database.write``), so the claim's lease, set in the
  same write transaction, is all that is needed.

A worker that dies mid-send leaves its rows pending with a lease; when the lease ends
another worker (or the restarted one) sends them again: at least once, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, exists, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from veil.domain.delivery import OutboxStatus
from veil.store.db import Conn
from veil.store.paging import newest_first
from veil.store.tables import accounts, delivery_attempts, masking_credentials, outbox, sessions

PENDING = OutboxStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed outbox row, with what signing it needs."""

    id: int
    event_id: str
    account_id: int
    session_id: int | None
    sequence: int
    event: str
    url: str
    backup_url: str | None
    method: str
    params: dict[str, Any]  # form parameters (plivo) or the JSON body (infobip)
    attempts: int  # attempts made before this claim
    created_time: datetime
    auth_token: str  # the owning (sub)account's
    main_auth_token: str  # its main account's (the same for a main account)
    format: str = "plivo"  # "infobip": a JSON body, signed with ``credentials``
    credentials: tuple[str, str] | None = None  # the owner's Infobip (apiId, key)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One stored attempt (``delivery_attempts``)."""

    attempt: int
    time: datetime
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int


_candidate = outbox.alias("candidate")
_earlier = outbox.alias("earlier")
_DUE_WHERE = (
    _candidate.c.status == PENDING,
    _candidate.c.next_attempt_time <= bindparam("now"),
    or_(_candidate.c.lease_until.is_(None), _candidate.c.lease_until <= bindparam("now")),
    ~exists()
    .where(
        _earlier.c.session_id == _candidate.c.session_id,
        _earlier.c.sequence < _candidate.c.sequence,
        _earlier.c.status == PENDING,
    )
    .correlate(_candidate),
)
_DUE_IDS = (
    select(_candidate.c.id)
    .where(*_DUE_WHERE)
    .order_by(_candidate.c.next_attempt_time, _candidate.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=_candidate)  # PostgreSQL; SQLite renders nothing
)
_CLAIM = (
    update(outbox)
    .where(outbox.c.id.in_(_DUE_IDS.scalar_subquery()))
    .values(lease_until=bindparam("lease_until"), lease_owner=bindparam("owner"))
    .returning(*outbox.c)
)
_ANY_DUE = select(_candidate.c.id).where(*_DUE_WHERE[:3]).limit(1)

_owner = accounts.alias("owner")
_parent = accounts.alias("parent")
_TOKENS = (
    select(
        _owner.c.id,
        _owner.c.auth_token,
        func.coalesce(_parent.c.auth_token, _owner.c.auth_token),
        masking_credentials.c.api_id,
        masking_credentials.c.key,
    )
    .select_from(
        _owner.outerjoin(_parent, _parent.c.id == _owner.c.parent_id).outerjoin(
            masking_credentials, masking_credentials.c.account_id == _owner.c.id
        )
    )
    .where(_owner.c.id.in_(bindparam("ids", expanding=True)))
)


async def any_due(conn: Conn, now: datetime) -> bool:
    """Whether some pending row may be due (cheap, on the due index; the claim decides)."""
    return (await conn.execute(_ANY_DUE, {"now": now})).first() is not None


async def claim_due(
    conn: Conn, *, now: datetime, limit: int, lease_until: datetime, owner: str
) -> list[Delivery]:
    """Lease up to ``limit`` due rows to ``owner`` until ``lease_until``; oldest due first.
    Run inside ``db.write()``: the lease is taken when that transaction commits."""
    if limit <= 0:
        return []
    rows = (
        await conn.execute(
            _CLAIM, {"now": now, "limit": limit, "lease_until": lease_until, "owner": owner}
        )
    ).all()
    if not rows:
        return []
    found: list[Any] = list(
        await conn.execute(_TOKENS, {"ids": sorted({r.account_id for r in rows})})
    )
    tokens = {row[0]: row[1:] for row in found}
    claimed = [_delivery(row._mapping, tokens) for row in rows]
    claimed.sort(key=lambda d: (d.created_time, d.id))
    return claimed


def _delivery(m: Any, tokens: dict[int, Any]) -> Delivery:
    token, main_token, api_id, key = tokens[m["account_id"]]
    return Delivery(
        id=m["id"],
        event_id=m["event_id"],
        account_id=m["account_id"],
        session_id=m["session_id"],
        sequence=m["sequence"],
        event=m["event"],
        url=m["url"],
        backup_url=m["backup_url"],
        method=m["method"],
        params=orjson.loads(m["payload"]),
        attempts=m["attempts"],
        created_time=m["created_time"],
        auth_token=token,
        main_auth_token=main_token,
        format=m["format"],
        credentials=(api_id, key) if api_id is not None else None,
    )


# Settling a row runs once per delivery: the statements are built once (building one
# with .values() and comparisons cost more than executing it).
_RECORD_ATTEMPT = insert(delivery_attempts)
_SETTLED = {
    "attempts": outbox.c.attempts + bindparam("made"),
    "lease_until": None,
    "lease_owner": None,
}
_MARK_DELIVERED = (
    update(outbox)
    .where(outbox.c.id == bindparam("row"), outbox.c.status == PENDING)
    .values(
        status=OutboxStatus.DELIVERED.value,
        delivered_time=bindparam("now"),
        last_error=None,
        **_SETTLED,
    )
)
_HELD = (
    outbox.c.id == bindparam("row"),
    outbox.c.status == PENDING,
    outbox.c.lease_owner == bindparam("owner"),
)
_SCHEDULE_RETRY = (
    update(outbox)
    .where(*_HELD)
    .values(next_attempt_time=bindparam("at"), last_error=bindparam("error"), **_SETTLED)
)
_MARK_DEAD = (
    update(outbox)
    .where(*_HELD)
    .values(status=OutboxStatus.DEAD.value, last_error=bindparam("error"), **_SETTLED)
)


async def record_attempts(conn: Conn, outbox_id: int, attempts: Sequence[Attempt]) -> None:
    """Store the history of one claim's attempts."""
    if attempts:
        await conn.execute(
            _RECORD_ATTEMPT,
            [
                {
                    "outbox_id": outbox_id,
                    "attempt": a.attempt,
                    "time": a.time,
                    "url": a.url,
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in attempts
            ],
        )


async def mark_delivered(conn: Conn, outbox_id: int, *, now: datetime, attempts: int) -> None:
    """A 2xx came back. Whoever holds the lease now, the event has reached the receiver."""
    await conn.execute(_MARK_DELIVERED, {"row": outbox_id, "now": now, "made": attempts})


async def schedule_retry(
    conn: Conn, outbox_id: int, *, owner: str, at: datetime, attempts: int, error: str
) -> None:
    """Try again at ``at``; only while ``owner`` still holds the row."""
    params = {"row": outbox_id, "owner": owner, "at": at, "made": attempts, "error": error}
    await conn.execute(_SCHEDULE_RETRY, params)


async def mark_dead(conn: Conn, outbox_id: int, *, owner: str, attempts: int, error: str) -> None:
    """Give up on the row (dead letter); only while ``owner`` still holds it."""
    params = {"row": outbox_id, "owner": owner, "made": attempts, "error": error}
    await conn.execute(_MARK_DEAD, params)


async def release(conn: Conn, outbox_ids: Iterable[int], *, owner: str) -> None:
    """Give rows back unsent (a worker stopping): due again at once, for anyone."""
    ids = list(outbox_ids)
    if ids:
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.lease_owner == owner)
            .values(lease_until=None, lease_owner=None)
        )


async def list_attempts(conn: Conn, outbox_id: int) -> list[Attempt]:
    """A row's attempts, first first."""
    rows = await conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.outbox_id == outbox_id)
        .order_by(delivery_attempts.c.attempt, delivery_attempts.c.id)
    )
    return [
        Attempt(
            attempt=r.attempt,
            time=r.time,
            url=r.url,
            status_code=r.status_code,
            error=r.error,
            duration_ms=r.duration_ms,
        )
        for r in rows
    ]


# --- Reading: the Webhook resource and the operator's metrics --------------------------


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """An outbox row as the account that owns it sees it (the Webhook resource)."""

    id: int
    event_id: str
    account_id: int  # the owner: a main account or a subaccount
    main_account_id: int
    subaccount: str  # the owner's auth_id when it is a subaccount, else ""
    session_uuid: str | None
    sequence: int
    event: str
    url: str
    method: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    created_time: datetime
    delivered_time: datetime | None
    next_attempt_time: datetime


_view_owner = accounts.alias("view_owner")
_VIEW = select(
    outbox.c.id,
    outbox.c.event_id,
    outbox.c.account_id,
    func.coalesce(_view_owner.c.parent_id, _view_owner.c.id).label("main_account_id"),
    _view_owner.c.parent_id,
    _view_owner.c.auth_id,
    sessions.c.uuid.label("session_uuid"),
    outbox.c.sequence,
    outbox.c.event,
    outbox.c.url,
    outbox.c.method,
    outbox.c.status,
    outbox.c.attempts,
    outbox.c.last_error,
    outbox.c.created_time,
    outbox.c.delivered_time,
    outbox.c.next_attempt_time,
).select_from(
    outbox.join(_view_owner, _view_owner.c.id == outbox.c.account_id).outerjoin(
        sessions, sessions.c.id == outbox.c.session_id
    )
)


def _view(row: Any) -> DeliveryView:
    m = row._mapping
    return DeliveryView(
        id=m["id"],
        event_id=m["event_id"],
        account_id=m["account_id"],
        main_account_id=m["main_account_id"],
        subaccount=m["auth_id"] if m["parent_id"] is not None else "",
        session_uuid=m["session_uuid"],
        sequence=m["sequence"],
        event=m["event"],
        url=m["url"],
        method=m["method"],
        status=OutboxStatus(m["status"]),
        attempts=m["attempts"],
        last_error=m["last_error"],
        created_time=m["created_time"],
        delivered_time=m["delivered_time"],
        next_attempt_time=m["next_attempt_time"],
    )


async def get_delivery(conn: Conn, event_id: str) -> DeliveryView | None:
    """One row by its event id (unique), whoever owns it."""
    row = (await conn.execute(_VIEW.where(outbox.c.event_id == event_id))).first()
    return _view(row) if row else None


async def list_deliveries(
    conn: Conn,
    *,
    main_account_id: int,
    account_id: int | None,
    since: datetime,
    status: OutboxStatus | None = None,
    session_uuid: str | None = None,
    event: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[DeliveryView], int]:
    """Rows of a main account's tree (or only of ``account_id``) written at or after
    ``since``, newest first, with the total. Found through ``ix_outbox_account_id`` (one
    account, or the tree's few accounts) and, with ``session_uuid``, ``ix_outbox_session``."""
    where: list[ColumnElement[bool]] = [outbox.c.created_time >= since]
    if account_id is not None:
        where.append(outbox.c.account_id == account_id)
    else:
        tree = select(accounts.c.id).where(
            or_(accounts.c.id == main_account_id, accounts.c.parent_id == main_account_id)
        )
        where.append(outbox.c.account_id.in_(tree))
    if status is not None:
        where.append(outbox.c.status == status.value)
    if session_uuid is not None:
        named = sessions.alias("named")  # not the listing's own join to sessions
        session_id = select(named.c.id).where(named.c.uuid == session_uuid)
        where.append(outbox.c.session_id == session_id.scalar_subquery())
    if event is not None:
        where.append(outbox.c.event == event)
    rows, total = await newest_first(
        conn, _VIEW, outbox, where, outbox.c.created_time, limit=limit, offset=offset
    )
    return [_view(r) for r in rows], total


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """The outbox as an operator watches it."""

    delivered: int  # rows delivered, ever (while the rows are kept)
    dead: int  # rows dead-lettered, ever
    pending: int  # rows waiting for their first or next attempt, or being sent
    due: int  # of those, rows whose next attempt time has come
    retries: int  # attempts beyond a row's first (retries and backup URLs)
    oldest_pending: datetime | None  # created_time of the oldest pending row


async def outbox_counts(conn: Conn, now: datetime) -> OutboxCounts:
    """Counts for the metrics. The per-status count scans ``ix_outbox_due`` (no table
    rows), the pending figures read only its ``pending`` range (short, unless delivery
    is falling behind), and the retries scan ``ix_delivery_attempts_outbox``."""
    grouped: list[Any] = list(
        await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    )
    by_status: dict[str, int] = {status: int(count) for status, count in grouped}
    pending = outbox.c.status == PENDING
    due = (
        await conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(pending, outbox.c.next_attempt_time <= now)
        )
    ).scalar_one()
    oldest = (await conn.execute(select(func.min(outbox.c.created_time)).where(pending))).scalar()
    retries = (
        await conn.execute(
            select(func.count())
            .select_from(delivery_attempts)
            .where(delivery_attempts.c.attempt > 1)
        )
    ).scalar_one()
    return OutboxCounts(
        delivered=by_status.get(OutboxStatus.DELIVERED.value, 0),
        dead=by_status.get(OutboxStatus.DEAD.value, 0),
        pending=by_status.get(PENDING, 0),
        due=int(due),
        retries=int(retries),
        oldest_pending=oldest,
    )


async def recent_latencies(
    conn: Conn, *, since: datetime, slack: timedelta, limit: int
) -> list[float]:
    """Seconds from written to delivered of rows delivered at or after ``since``: at most
    ``limit`` of them, those last due first.

    There is no index on ``delivered_time``; the range is taken on ``ix_outbox_due``
    instead, ``(delivered, next_attempt_time >= since - slack)``. A row's last due time
    is never after its delivery, so this only leaves out rows that waited more than
    ``slack`` past their due time (a backlog, which the queue depth shows)."""
    rows: list[Any] = list(
        await conn.execute(
            select(outbox.c.created_time, outbox.c.delivered_time)
            .where(
                outbox.c.status == OutboxStatus.DELIVERED.value,
                outbox.c.next_attempt_time >= since - slack,
                outbox.c.delivered_time >= since,
            )
            .order_by(outbox.c.next_attempt_time.desc())
            .limit(limit)
        )
    )
    return [max((delivered - created).total_seconds(), 0.0) for created, delivered in rows]
