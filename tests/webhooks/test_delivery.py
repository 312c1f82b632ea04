"""Webhook delivery end to end: outbox rows written by the service layer reach a real HTTP
receiver, signed so that Plivo's SDK validates them, retried, ordered per session, never
sent twice at once by two workers, and not lost when a worker (or the whole ``veil serve``
process) dies mid-send. Real SQLite and PostgreSQL; retries use tiny backoffs, so nothing
waits long and nothing asserts on timing beyond lower bounds the code guarantees."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import plivo.utils
import pytest
from sqlalchemy import func, select, update

from tests.servers import BACKENDS, database, veil_server
from tests.utils import party_number, pool_number
from tests.webhooks.receiver import Received, Receiver
from veil.clock import FakeClock, SystemClock
from veil.domain.accounts import Account
from veil.domain.delivery import OutboxStatus, RetryPolicy
from veil.domain.events import Callback, SessionEvent, session_event
from veil.domain.session import Session
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers, sessions, sweeper
from veil.service.context import ServiceContext
from veil.store import deliveries, outbox
from veil.store.db import Database
from veil.store.tables import delivery_attempts
from veil.store.tables import outbox as outbox_table
from veil.webhooks.delivery import DeliveryConfig, DeliveryWorker

FAST = DeliveryConfig(
    timeout=2.0,
    concurrency=8,
    retry=RetryPolicy(base=0.01, cap=0.05, max_age=3600.0),
    poll_interval=0.05,
)
SETTLE_TIMEOUT = 20.0  # seconds
FAKE_LAG = timedelta(minutes=5)


Scenario = Callable[[ServiceContext], Awaitable[None]]


def run(url: str, scenario: Scenario) -> None:
    """``scenario`` on its own loop and database handle; afterwards nothing it left is
    pending, so the next test's worker does not inherit it."""

    async def main() -> None:
        db = Database(url)
        # Fake time for the service layer, a little in the past, so that what a test does
        # in it (a session expiring) is already due for the worker, which runs on the
        # real clock.
        ctx = ServiceContext(db=db, clock=FakeClock(datetime.now(UTC) - FAKE_LAG))
        try:
            await scenario(ctx)
        finally:
            async with db.write() as conn:
                await conn.execute(
                    update(outbox_table)
                    .where(outbox_table.c.status == "pending")
                    .values(status="dead", last_error="left by a test")
                )
            await db.dispose()

    asyncio.run(main())


@contextlib.asynccontextmanager
async def worker(db: Database, config: DeliveryConfig = FAST) -> AsyncIterator[DeliveryWorker]:
    running = DeliveryWorker(db, SystemClock(), config, rand=lambda: 0.5)
    running.start()
    try:
        yield running
    finally:
        await running.stop()


# Data -------------------------------------------------------------------------------


async def new_account(ctx: ServiceContext, parent: Account | None = None) -> Account:
    account = await accounts.create_account(
        ctx, name="Hooks", parent_auth_id=parent.auth_id if parent else None
    )
    pool = [pool_number() for _ in range(3)]
    if parent is None:
        await numbers.add_numbers(ctx, account, pool)
    else:  # numbers of the main account, for this subaccount's sessions
        await numbers.add_numbers(ctx, parent, pool, subaccount=account.auth_id)
    return account


async def new_session(
    ctx: ServiceContext, account: Account, callback_url: str, **extra: Any
) -> Session:
    body = {
        "first_party": party_number(),
        "second_party": party_number(),
        "callback_url": callback_url,
        **extra,
    }
    return await sessions.create_session(ctx, account, parse_create(body, Profile.CURRENT))


async def add_events(ctx: ServiceContext, session: Session, count: int) -> list[str]:
    """``count`` session events in the outbox, through the session's sequence; their ids."""
    ids: list[str] = []
    now = ctx.clock.now()

    def build(sequence: int) -> Callback | None:
        return session_event(session, SessionEvent.FIRST_PARTY_ANSWER, now, sequence)

    for _ in range(count):
        async with ctx.db.write() as conn:
            await outbox.enqueue_session_event(conn, session, now, build)
            row = (
                await conn.execute(
                    select(outbox_table.c.event_id)
                    .where(outbox_table.c.session_id == session.id)
                    .order_by(outbox_table.c.sequence.desc())
                    .limit(1)
                )
            ).one()
            ids.append(row.event_id)
    return ids


async def add_loose_event(ctx: ServiceContext, account: Account, url: str) -> str:
    """An event that belongs to no session (ordered with nothing)."""
    async with ctx.db.write() as conn:
        return await outbox.enqueue(
            conn,
            account_id=account.id,
            session_id=None,
            sequence=0,
            callback=Callback(url, "POST", "Loose", {"EventName": "Loose"}),
            now=ctx.clock.now(),
        )


async def row(db: Database, event_id: str) -> Any:
    async with db.read() as conn:
        return (
            await conn.execute(select(outbox_table).where(outbox_table.c.event_id == event_id))
        ).one()


async def attempts_of(db: Database, event_id: str) -> list[deliveries.Attempt]:
    async with db.read() as conn:
        return await deliveries.list_attempts(conn, (await row(db, event_id)).id)


async def settle(db: Database, event_ids: list[str], within: float = SETTLE_TIMEOUT) -> None:
    """Wait (bounded) until none of ``event_ids`` is pending."""
    async with asyncio.timeout(within):
        while True:
            async with db.read() as conn:
                left = (
                    await conn.execute(
                        select(func.count())
                        .select_from(outbox_table)
                        .where(
                            outbox_table.c.event_id.in_(event_ids),
                            outbox_table.c.status == "pending",
                        )
                    )
                ).scalar_one()
            if left == 0:
                return
            await asyncio.sleep(0.05)


def assert_signed(request: Received, account: Account, main: Account) -> None:
    """The V3 and Ma-V3 signatures validate with Plivo's own SDK (plivo-wire.md 8.3)."""
    nonce = request.headers["X-Plivo-Signature-V3-Nonce"]
    params = request.params if request.method == "POST" else None
    for header, token in (
        ("X-Plivo-Signature-V3", account.auth_token),
        ("X-Plivo-Signature-Ma-V3", main.auth_token),
    ):
        assert plivo.utils.validate_v3_signature(
            request.method, request.url, nonce, token, request.headers[header], params
        ), header
    # And not with someone else's token.
    assert not plivo.utils.validate_v3_signature(
        request.method,
        request.url,
        nonce,
        "x" * 40,
        request.headers["X-Plivo-Signature-V3"],
        params,
    )
    assert plivo.utils.validate_signature(
        request.url, nonce, request.headers["X-Plivo-Signature-V2"], account.auth_token
    )


class CountingWorker(DeliveryWorker):
    """A worker that counts the rows it sent, to show that both nodes took part."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, SystemClock(), FAST, rand=lambda: 0.5)
        self.sent = 0

    async def _deliver(self, delivery: deliveries.Delivery) -> None:
        self.sent += 1
        await super()._deliver(delivery)


def sequences_by_session(requests: list[Received]) -> dict[str, list[int]]:
    """Each session's SequenceNumbers in the order the receiver first saw them."""
    seen: set[str] = set()
    order: dict[str, list[int]] = defaultdict(list)
    for request in requests:
        if request.event_id in seen or "SessionUUID" not in request.params:
            continue
        seen.add(request.event_id)
        order[request.params["SessionUUID"]].append(int(request.params["SequenceNumber"]))
    return order


# The wire ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_session_timeout_reaches_the_receiver_signed(
    url: str, receiver: Receiver, method: str
) -> None:
    async def scenario(ctx: ServiceContext) -> None:
        main = await new_account(ctx)
        sub = await new_account(ctx, parent=main)
        session = await new_session(
            ctx,
            main,
            receiver.url("/hooks/masking?tenant=7"),
            callback_method=method,
            subaccount=sub.auth_id,
            session_expiry=60,
        )
        assert isinstance(ctx.clock, FakeClock)
        ctx.clock.advance(61)
        assert await sweeper.expire_due(ctx) >= 1  # writes SessionTimeout to the outbox
        async with worker(ctx.db):
            await asyncio.to_thread(receiver.wait_for, lambda r: len(r.answered()) >= 1)
            [request] = receiver.answered()
            await settle(ctx.db, [request.event_id])

        assert request.method == method
        assert request.path == "/hooks/masking"
        assert request.headers["User-Agent"] == "Veil"
        if method == "POST":
            assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert "tenant=7" in request.url  # the customer's own query is kept
        else:
            assert request.body == b""
            assert request.params["tenant"] == "7"
        params = {k: v for k, v in request.params.items() if k != "tenant"}
        stored_row = await row(ctx.db, request.event_id)
        assert params["EventName"] == "SessionTimeout"
        assert params["SessionUUID"] == session.uuid
        assert params["SequenceNumber"] == "1"
        assert params["EventId"] == stored_row.event_id
        assert params["FirstParty"] == session.first_party.lstrip("+")
        # Owner's token for V3 (the subaccount), the main account's for Ma-V3.
        assert_signed(request, sub, main)
        assert stored_row.status == OutboxStatus.DELIVERED
        assert stored_row.attempts == 1
        assert stored_row.delivered_time is not None
        assert stored_row.lease_until is None
        [attempt] = await attempts_of(ctx.db, request.event_id)
        assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)
        assert attempt.url == receiver.url("/hooks/masking?tenant=7")
        assert attempt.duration_ms >= 0

    run(url, scenario)


# Retries ----------------------------------------------------------------------------


def test_500_then_200_is_retried(url: str, receiver: Receiver) -> None:
    receiver.respond = lambda r: (500, {}) if len(receiver.requests) == 1 else (200, {})

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        session = await new_session(ctx, account, receiver.url())
        [event_id] = await add_events(ctx, session, 1)
        async with worker(ctx.db):
            await settle(ctx.db, [event_id])
        stored = await row(ctx.db, event_id)
        assert (stored.status, stored.attempts) == ("delivered", 2)
        tries = await attempts_of(ctx.db, event_id)
        assert [(a.attempt, a.status_code) for a in tries] == [(1, 500), (2, 200)]
        # The same event id both times: a receiver can deduplicate.
        assert [r.event_id for r in receiver.requests] == [event_id, event_id]

    run(url, scenario)


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (404, {}, "HTTP 404"),
        (410, {}, "HTTP 410"),
        (302, {"Location": "http://127.0.0.1:9/elsewhere"}, "HTTP 302: redirect to "),
    ],
)
def test_other_4xx_and_redirects_are_not_retried(
    url: str, receiver: Receiver, status: int, headers: dict[str, str], error: str
) -> None:
    receiver.respond = lambda r: (status, headers)

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        session = await new_session(ctx, account, receiver.url())
        [event_id, following] = await add_events(ctx, session, 2)
        async with worker(ctx.db):
            await settle(ctx.db, [event_id, following])
        stored = await row(ctx.db, event_id)
        assert (stored.status, stored.attempts) == ("dead", 1)
        assert stored.last_error.startswith(error)
        if status == 302:
            assert stored.last_error.endswith("/elsewhere not followed")
        # One request per event: no retry, no redirect followed; and the dead event does
        # not block the session's next one.
        assert [r.event_id for r in receiver.requests] == [event_id, following]

    run(url, scenario)


def test_429_retry_after_is_honoured(url: str, receiver: Receiver) -> None:
    receiver.respond = lambda r: (
        (429, {"Retry-After": "1"}) if len(receiver.requests) == 1 else (200, {})
    )

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        session = await new_session(ctx, account, receiver.url())
        [event_id] = await add_events(ctx, session, 1)
        async with worker(ctx.db):
            await settle(ctx.db, [event_id])
        first, second = await attempts_of(ctx.db, event_id)
        assert (first.status_code, second.status_code) == (429, 200)
        # The backoff alone would have retried within 0.05 s; Retry-After said 1 s.
        assert second.time - first.time >= timedelta(seconds=1)

    run(url, scenario)


def test_receiver_down_then_up_gets_everything_in_order(url: str) -> None:
    receiver = Receiver()  # not started: its port refuses connections

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        ids: list[str] = []
        for _ in range(3):
            session = await new_session(ctx, account, receiver.url())
            ids += await add_events(ctx, session, 4)
        ids.append(await add_loose_event(ctx, account, receiver.url("/loose")))
        async with worker(ctx.db):
            # Let it fail a few times first.
            async with asyncio.timeout(SETTLE_TIMEOUT):
                while True:
                    async with ctx.db.read() as conn:
                        failed = (
                            await conn.execute(
                                select(func.count())
                                .select_from(delivery_attempts)
                                .where(delivery_attempts.c.error.is_not(None))
                                .join(outbox_table)
                                .where(outbox_table.c.event_id.in_(ids))
                            )
                        ).scalar_one()
                    if failed >= 8:
                        break
                    await asyncio.sleep(0.05)
            receiver.start()
            try:
                await settle(ctx.db, ids)
            finally:
                receiver.stop()
        for event_id in ids:
            assert (await row(ctx.db, event_id)).status == "delivered"
        assert receiver.delivered_ids() == set(ids)
        order = sequences_by_session(receiver.requests)
        assert len(order) == 3
        assert all(seqs == [1, 2, 3, 4] for seqs in order.values()), order
        stored = await attempts_of(ctx.db, ids[0])
        assert stored[0].status_code is None
        assert stored[0].error is not None and "ConnectionRefusedError" in stored[0].error
        assert stored[-1].status_code == 200

    run(url, scenario)


def test_an_event_waits_for_the_earlier_ones_of_its_session(url: str, receiver: Receiver) -> None:
    """The head fails a few times; the session's later events wait for it, while another
    session's events go ahead."""
    failures = {"left": 3}

    def respond(request: Received) -> tuple[int, dict[str, str]]:
        first = request.params.get("SequenceNumber") == "1" and request.path == "/slow"
        if first and failures["left"] > 0:
            failures["left"] -= 1
            return 503, {}
        return 200, {}

    receiver.respond = respond

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        slow = await new_session(ctx, account, receiver.url("/slow"))
        fast = await new_session(ctx, account, receiver.url("/fast"))
        ids = await add_events(ctx, slow, 3) + await add_events(ctx, fast, 3)
        async with worker(ctx.db):
            await settle(ctx.db, ids)
        slow_seen = [r.params["SequenceNumber"] for r in receiver.requests if r.path == "/slow"]
        assert slow_seen == ["1", "1", "1", "1", "2", "3"]
        assert sequences_by_session(receiver.requests)[fast.uuid] == [1, 2, 3]

    run(url, scenario)


# Backup URL and refusals --------------------------------------------------------------


def test_backup_url_is_tried_when_the_primary_fails_for_good(url: str, receiver: Receiver) -> None:
    receiver.respond = lambda r: (404, {}) if r.path == "/primary" else (200, {})

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        session = await new_session(ctx, account, receiver.url("/primary"))
        [event_id] = await add_events(ctx, session, 1)
        async with ctx.db.write() as conn:
            await conn.execute(
                update(outbox_table)
                .where(outbox_table.c.event_id == event_id)
                .values(backup_url=receiver.url("/backup"))
            )
        async with worker(ctx.db):
            await settle(ctx.db, [event_id])
        assert (await row(ctx.db, event_id)).status == "delivered"
        tries = await attempts_of(ctx.db, event_id)
        assert [(a.url, a.status_code) for a in tries] == [
            (receiver.url("/primary"), 404),
            (receiver.url("/backup"), 200),
        ]
        assert_signed(receiver.requests[1], account, account)  # signed for the backup URL

    run(url, scenario)


def test_private_targets_are_refused_when_the_operator_says_so(
    url: str, receiver: Receiver
) -> None:
    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        session = await new_session(ctx, account, receiver.url())
        [event_id] = await add_events(ctx, session, 1)
        strict = DeliveryConfig(
            timeout=FAST.timeout, retry=FAST.retry, poll_interval=0.05, block_private=True
        )
        async with worker(ctx.db, strict):
            await settle(ctx.db, [event_id])
        stored = await row(ctx.db, event_id)
        assert stored.status == "dead"
        assert stored.last_error == "refused: 127.0.0.1 is a loopback address"
        assert receiver.requests == []

    run(url, scenario)


# Crashes and several workers ------------------------------------------------------------


def test_a_stopped_worker_gives_back_what_it_was_sending(url: str, receiver: Receiver) -> None:
    receiver.hold()

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        session = await new_session(ctx, account, receiver.url())
        ids = await add_events(ctx, session, 2)
        async with worker(ctx.db):
            await asyncio.to_thread(receiver.wait_for, lambda r: len(r.requests) >= 1)
        # Stopped mid-send: the row is pending again and free for anyone at once.
        head = await row(ctx.db, ids[0])
        assert (head.status, head.lease_until, head.attempts) == ("pending", None, 0)
        receiver.release()
        async with worker(ctx.db):
            await settle(ctx.db, ids)
        assert receiver.delivered_ids() >= set(ids)

    run(url, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_never_send_one_event_at_the_same_time(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.delay = 0.01  # keep requests in flight long enough to overlap, if they could

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        ids: list[str] = []
        for _ in range(8):
            session = await new_session(ctx, account, receiver.url())
            ids += await add_events(ctx, session, 4)
        for _ in range(16):
            ids.append(await add_loose_event(ctx, account, receiver.url("/loose")))
        other = Database(ctx.db.url)  # a second node on the same database
        nodes = [CountingWorker(ctx.db), CountingWorker(other)]
        try:
            for node in nodes:
                node.start()
            await settle(ctx.db, ids, within=40)
        finally:
            for node in nodes:
                await node.stop()
            await other.dispose()
        assert all(node.sent > 0 for node in nodes)  # both took part
        assert receiver.overlaps == []
        assert receiver.delivered_ids() == set(ids)
        order = sequences_by_session(receiver.requests)
        assert all(seqs == [1, 2, 3, 4] for seqs in order.values()), order
        async with ctx.db.read() as conn:
            statuses = (
                await conn.execute(
                    select(outbox_table.c.status, func.count())
                    .where(outbox_table.c.event_id.in_(ids))
                    .group_by(outbox_table.c.status)
                )
            ).all()
        assert dict(statuses) == {"delivered": len(ids)}

    with database(backend, tmp_path) as database_url:
        run(database_url, scenario)


def test_killed_veil_process_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """``kill -9`` of ``veil serve`` while it is sending: after a restart every event is
    delivered (some twice, which the event id lets the receiver see)."""
    with database("sqlite", tmp_path) as database_url:
        ids: list[str] = []
        session_uuids: list[str] = []

        async def enqueue(ctx: ServiceContext) -> None:
            account = await new_account(ctx)
            for _ in range(3):
                session = await new_session(ctx, account, receiver.url())
                session_uuids.append(session.uuid)
                ids.extend(await add_events(ctx, session, 3))

        async def main() -> None:
            db = Database(database_url)
            try:
                await enqueue(ServiceContext(db=db, clock=SystemClock()))
            finally:
                await db.dispose()

        asyncio.run(main())
        receiver.hold()
        settings = {"VEIL_SIP_LISTEN": "off", "VEIL_WEBHOOK_TIMEOUT": "1"}
        with veil_server(database_url, tmp_path, **settings) as first:
            receiver.wait_for(lambda r: len(r.requests) >= 3)  # the three sessions' heads
            first.process.kill()  # SIGKILL, mid-send
            first.process.wait(5)
        held = {r.event_id for r in receiver.requests}
        receiver.release()
        with veil_server(database_url, tmp_path, **settings):
            # The heads come again once the dead process's leases end.
            receiver.wait_for(lambda r: r.delivered_ids() >= set(ids), timeout=30)

        async def check() -> None:
            db = Database(database_url)
            try:
                await settle(db, ids, within=10)
                for event_id in ids:
                    assert (await row(db, event_id)).status == "delivered"
            finally:
                await db.dispose()

        asyncio.run(check())
        again = [r.event_id for r in receiver.requests if r.event_id in held]
        assert all(again.count(event_id) >= 2 for event_id in held)
        order = sequences_by_session(receiver.requests)
        assert sorted(order) == sorted(session_uuids)
        assert all(seqs == [1, 2, 3] for seqs in order.values()), order
