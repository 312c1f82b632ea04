"""The background sweeper: marks time-expired sessions expired and reports them.

Readers already see a session as expired the moment its expiry passes
(``Session.status_at``); the sweeper makes it durable, writes the ``SessionTimeout``
callback to the outbox and deletes claims that have ended. Safe to run on several nodes
at once: marking is conditional, so each session is reported once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from veil.domain.events import Callback, SessionEvent, session_event
from veil.domain.session import Session
from veil.service.context import ServiceContext
from veil.store import claims, outbox
from veil.store import sessions as repo

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0  # seconds between sweeps
SWEEP_BATCH = 200  # sessions per transaction, so API writers are not held up long


async def expire_due(ctx: ServiceContext, batch: int = SWEEP_BATCH) -> int:
    """One sweep step; returns how many sessions it marked expired."""
    marked = 0
    async with ctx.db.write() as conn:
        now = ctx.clock.now()
        for session in await repo.due_for_expiry(conn, now, batch):
            if not await repo.mark_expired(conn, session.id, now):
                continue
            marked += 1
            if session.settings.callback_url:
                await outbox.enqueue_session_event(conn, session, now, _timeout_event(session))
        await claims.purge_dead(conn, now)
    return marked


async def sweep_all(ctx: ServiceContext) -> int:
    """Sweep until nothing is due."""
    total = 0
    while (marked := await expire_due(ctx)) > 0:
        total += marked
    return total


async def run_forever(ctx: ServiceContext, interval: float = SWEEP_INTERVAL) -> None:
    while True:
        try:
            await sweep_all(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not stop expiry for good
            log.exception("sweep failed; retrying in %.1f s", interval)
        await asyncio.sleep(interval)


def _timeout_event(session: Session) -> Callable[[int], Callback | None]:
    def build(sequence: int) -> Callback | None:
        return session_event(
            session,
            SessionEvent.TIMEOUT,
            session.expiry_time,
            sequence,
            FirstParty=session.first_party.lstrip("+"),
            SecondParty=session.second_party.lstrip("+"),
        )

    return build
