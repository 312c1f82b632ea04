"""The delivery worker: drains the outbox to customer URLs, signed as Plivo signs.

Theory of operation. One loop per node claims due rows (``veil.store.deliveries``) up to
the free places among ``concurrency`` requests in flight, sends each in a task of its own
and, when a task ends, records its attempts and settles its row in one write: delivered
(a 2xx), retried later, or dead (``veil.domain.delivery`` decides). The loop claims again
as soon as a send ends (the next event of that session may now go) and otherwise every
``poll_interval`` seconds, with a cheap read first so that an idle node does not write.

Guarantees:
- at least once: a row is settled only after its request ended; a crash in between leaves
  it pending with a lease, and it is sent again when the lease ends;
- never the same row twice at the same time: a send (including the backup URL's) is cut
  off after ``2 * timeout``, well inside the lease of ``LEASE_FACTOR * timeout``;
- order per session: only the head of each session's queue is ever claimed.

Every request carries the row's parameters plus ``EventId`` (stable across retries) and
``SequenceNumber`` (per session), so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import orjson

from veil.clock import Clock
from veil.config import Settings
from veil.domain.delivery import (
    Decision,
    Outcome,
    RetryPolicy,
    Step,
    address_problem,
    decide,
    parse_retry_after,
    url_problem,
)
from veil.store import deliveries
from veil.store.db import Database
from veil.store.deliveries import Attempt, Delivery
from veil.webhooks.http1 import CallbackClient, CallbackHttpError
from veil.webhooks.signing import infobip_authorization, plivo_headers, request_url

log = logging.getLogger(__name__)

USER_AGENT = "Veil"
POLL_INTERVAL = 0.2  # seconds between claims when nothing woke the loop
LEASE_FACTOR = 3  # a claim's lease, in request timeouts (a send takes at most two)
STOP_GRACE = 1.0  # seconds in-flight sends get to finish when the worker stops
RELEASE_TIMEOUT = 2.0  # seconds for giving unsent rows back when stopping


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How the worker sends. ``from_settings`` maps the ``VEIL_WEBHOOK_*`` settings."""

    timeout: float = 5.0  # seconds per request, connect to response
    concurrency: int = 128  # requests in flight
    block_private: bool = False  # refuse targets that resolve to non-public addresses
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = POLL_INTERVAL

    @property
    def lease(self) -> float:
        return LEASE_FACTOR * self.timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            timeout=settings.webhook_timeout,
            concurrency=settings.webhook_concurrency,
            block_private=settings.block_private_targets,
            retry=RetryPolicy(max_age=settings.webhook_max_age),
        )


class DeliveryWorker:
    """Sends the outbox. ``start()`` it once; ``stop()`` finishes or abandons what is in
    flight (abandoned rows are given back, or their lease ends if that fails) and returns.

    ``rand`` draws the backoff jitter (tests pass a fixed one).
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: DeliveryConfig,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.clock = clock
        self.config = config
        self._rand = rand
        self._owner = str(uuid.uuid4())  # names this worker's leases
        self._wake = asyncio.Event()
        self._inflight: dict[asyncio.Task[None], Delivery] = {}
        self._task: asyncio.Task[None] | None = None
        self._client: CallbackClient | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        # No proxy from the environment (targets are checked as given), no redirects.
        self._client = CallbackClient(user_agent=USER_AGENT)
        try:
            while True:
                self._wake.clear()
                try:
                    await self._claim_and_send()
                except Exception:  # a database hiccup must not stop delivery for good
                    log.exception("claiming webhooks failed; retrying")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.poll_interval):
                        await self._wake.wait()
        finally:
            await self._shutdown()

    async def _claim_and_send(self) -> None:
        free = self.config.concurrency - len(self._inflight)
        if free <= 0:
            return
        now = self.clock.now()
        async with self.db.read() as conn:
            if not await deliveries.any_due(conn, now):
                return
        async with self.db.write() as conn:
            now = self.clock.now()
            claimed = await deliveries.claim_due(
                conn,
                now=now,
                limit=free,
                lease_until=now + timedelta(seconds=self.config.lease),
                owner=self._owner,
            )
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery))
            self._inflight[task] = delivery
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("webhook delivery failed", exc_info=exc)
        self._wake.set()  # a place is free, and the session's next event may be due

    async def _shutdown(self) -> None:
        """Give in-flight sends a moment, abandon the rest and hand their rows back."""
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=STOP_GRACE)
        abandoned = dict(self._inflight)
        for task in abandoned:
            task.cancel()
        await asyncio.gather(*abandoned, return_exceptions=True)
        if abandoned:
            try:
                async with asyncio.timeout(RELEASE_TIMEOUT), self.db.write() as conn:
                    await deliveries.release(
                        conn, (d.id for d in abandoned.values()), owner=self._owner
                    )
            except Exception:  # their leases end on their own
                log.warning("could not release %d webhook rows", len(abandoned), exc_info=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(self, delivery: Delivery) -> None:
        """Send one row (and its backup URL if the primary fails for good), then settle it."""
        attempts: list[Attempt] = []
        outcome = await self._attempt(delivery, delivery.url, attempts)
        decision = self._decide(delivery, outcome, len(attempts))
        error = outcome.describe()
        if decision.step is Step.DEAD and delivery.backup_url:
            backup = await self._attempt(delivery, delivery.backup_url, attempts)
            decision = self._decide(delivery, backup, len(attempts))
            if decision.step is Step.RETRY:  # the backup is tried once
                decision = Decision(Step.DEAD)
            error = f"{error}; backup: {backup.describe()}"
        async with self.db.write() as conn:
            await deliveries.record_attempts(conn, delivery.id, attempts)
            now = self.clock.now()
            if decision.step is Step.DELIVERED:
                await deliveries.mark_delivered(conn, delivery.id, now=now, attempts=len(attempts))
            elif decision.step is Step.RETRY:
                assert decision.at is not None
                await deliveries.schedule_retry(
                    conn,
                    delivery.id,
                    owner=self._owner,
                    at=decision.at,
                    attempts=len(attempts),
                    error=error,
                )
            else:
                await deliveries.mark_dead(
                    conn, delivery.id, owner=self._owner, attempts=len(attempts), error=error
                )
        if decision.step is Step.DEAD:
            log.warning(
                "webhook %s (%s) to %s is dead: %s",
                delivery.event_id,
                delivery.event,
                delivery.url,
                error,
            )

    def _decide(self, delivery: Delivery, outcome: Outcome, made: int) -> Decision:
        return decide(
            outcome,
            attempt=delivery.attempts + made,
            created_time=delivery.created_time,
            now=self.clock.now(),
            policy=self.config.retry,
            rand=self._rand(),
        )

    async def _attempt(self, delivery: Delivery, url: str, attempts: list[Attempt]) -> Outcome:
        """One request, stored in ``attempts``."""
        started = self.clock.now()
        began = time.monotonic()
        outcome = await self._send(delivery, url)
        attempts.append(
            Attempt(
                attempt=delivery.attempts + len(attempts) + 1,
                time=started,
                url=url,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=round((time.monotonic() - began) * 1000),
            )
        )
        return outcome

    async def _send(self, delivery: Delivery, url: str) -> Outcome:
        """The one boundary where network and HTTP failures become outcomes."""
        problem = url_problem(url)
        if problem is not None:
            return Outcome(error=problem, refused=True)
        if delivery.format == "infobip":
            try:  # the URL as it goes on the wire, which is what is signed
                target = request_url(url, "POST", {})
            except ValueError as exc:  # a bad port or host
                return Outcome(error=f"refused: {exc}", refused=True)
            return await self._request(target, *_infobip_request(delivery, target))
        params = dict(delivery.params)
        params["EventId"] = delivery.event_id
        params.setdefault("SequenceNumber", str(delivery.sequence))
        method = delivery.method.upper()
        try:
            target = request_url(url, method, params)
            headers = plivo_headers(
                url, method, params, delivery.auth_token, delivery.main_auth_token
            )
        except ValueError as exc:  # a method other than GET/POST, a bad port or host
            return Outcome(error=f"refused: {exc}", refused=True)
        content = b""
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(params).encode()
        return await self._request(target, headers, content, method)

    async def _request(
        self, target: str, headers: dict[str, str], content: bytes, method: str = "POST"
    ) -> Outcome:
        assert self._client is not None
        try:
            async with asyncio.timeout(self.config.timeout):
                if self.config.block_private:
                    refusal = await private_target(target)
                    if refusal is not None:
                        return Outcome(error=refusal, refused=True)
                reply = await self._client.request(method, target, list(headers.items()), content)
        except TimeoutError:
            return Outcome(error=f"timeout after {self.config.timeout:g} s")
        except (CallbackHttpError, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        status = reply.status
        if 300 <= status < 400:
            location = reply.headers.get("location", "(no Location)")
            return Outcome(
                status_code=status, error=f"HTTP {status}: redirect to {location} not followed"
            )
        return Outcome(
            status_code=status,
            retry_after=parse_retry_after(reply.headers.get("retry-after"), self.clock.now()),
        )


def _infobip_request(delivery: Delivery, url: str) -> tuple[dict[str, str], bytes]:
    """An Infobip-style report: the stored JSON as the body, signed with the account's
    credentials when it has them; the event id in a header, so receivers can drop
    duplicates without a field Infobip's schema lacks."""
    content = orjson.dumps(delivery.params)
    headers = {"Content-Type": "application/json", "X-Veil-Event-Id": delivery.event_id}
    if delivery.credentials is not None:
        headers["Authorization"] = infobip_authorization(*delivery.credentials, url, content)
    return headers, content


async def private_target(url: str) -> str | None:
    """Why ``url``'s host is refused under ``VEIL_WEBHOOK_BLOCK_PRIVATE``, or None.

    The host is resolved here and again by the HTTP client; a name whose answers change in
    between (DNS rebinding) is not caught by this check."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        problem = address_problem(str(info[4][0]))
        if problem is not None:
            return problem
    return None
