"""Webhook deliveries per second from a real ``veil serve`` to a local receiver.

Two phases per concurrency setting (``--concurrency 32,128``), each on a fresh database
and a fresh ``veil serve`` (one process, as ``make run``) with
``VEIL_WEBHOOK_CONCURRENCY`` set:

- **backlog drain**: ``--events`` outbox rows (default 20,000) are written before Veil
  starts, through ``veil.store.outbox.enqueue_session_event`` in write transactions, over
  real sessions with 1-10 events each (interleaved across sessions as live traffic would
  be; order is kept per session, so only one event of a session is ever in flight). Veil's
  worker drains them from its start; the rate is the receiver's count over the time
  from its first to its last request;
- **fixed rate**: the bench then writes new rows at ``--rate`` per second for
  ``--seconds`` (open loop, a batch every 10 ms, sessions as above) while Veil delivers;
  reports created_time -> delivered_time from the outbox rows.

The receiver is a process of its own (uvloop + httptools, HTTP/1.1 keep-alive) on
127.0.0.1 that answers 200 to everything, counts requests and distinct EventIds (so
duplicates show), and checks the V3 signature of every ``--validate-every``-th request
with Plivo's SDK (``plivo.utils.validate_v3_signature``). CPU of Veil and of the receiver
comes from ``/proc/<pid>/stat``.

``--profile`` instead runs Veil's ``DeliveryWorker`` in this process under cProfile over
a prefilled database (same receiver) and prints where the time goes.

Usage: python bench/webhooks.py [--backend sqlite|postgresql] [--events 20000]
       [--concurrency 32,128] [--rate 500] [--seconds 10] [--profile]
Everything is bounded: event counts are capped, every wait has a deadline, and every
process is stopped by its PID. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from veil.domain.accounts import Account
from veil.domain.events import Callback
from veil.domain.session import Session
from veil.domain.timefmt import format_event_time

MAX_EVENTS = 200_000
MAX_SECONDS = 600  # the longest any drain or fixed-rate phase may take
POOL = 500  # virtual numbers
EVENTS = [  # a call's session events, in order (Plivo's names)
    "SessionFirstPartyInitiated",
    "SessionFirstPartyRinging",
    "SessionFirstPartyAnswer",
    "SessionSecondPartyInitiated",
    "SessionSecondPartyRing",
    "SessionSecondPartyAnswer",
    "SessionFirstPartyHangup",
    "SessionSecondPartyHangup",
    "SessionFirstPartyComplete",
    "SessionSecondPartyComplete",
]


# --- the receiver (a process of its own) -------------------------------------------------


def receiver_main(port: int, validate_every: int, token: str) -> None:
    """HTTP/1.1 server on 127.0.0.1:``port``: 200 to every request; ``GET /stats`` gives
    the counts as JSON. Runs until SIGTERM (and at most ``MAX_SECONDS * 4``)."""
    import httptools
    import uvloop
    from plivo.utils import validate_v3_signature

    arrivals: Counter[int] = Counter()  # requests per wall-clock second
    seen: set[str] = set()
    stats = {"requests": 0, "connections": 0, "duplicates": 0, "validated": 0, "invalid": 0}
    span = [0.0, 0.0]  # first and last request, wall clock
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    def stats_body() -> bytes:
        return json.dumps(
            stats | {"first": span[0], "last": span[1], "per_second": sorted(arrivals.items())}
        ).encode()

    class Handler(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            stats["connections"] += 1
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""
            self.headers: dict[bytes, bytes] = {}
            self.body: list[bytes] = []

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_message_begin(self) -> None:
            self.url = b""
            self.headers = {}
            self.body = []

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers[name.lower()] = value

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            if self.url == b"/stats":
                body = stats_body()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(body)
                    + body
                )
                return
            now = time.time()
            if not stats["requests"]:
                span[0] = now
            span[1] = now
            stats["requests"] += 1
            arrivals[int(now)] += 1
            params = dict(parse_qsl(b"".join(self.body).decode(), keep_blank_values=True))
            event_id = params.get("EventId", "")
            if event_id in seen:
                stats["duplicates"] += 1
            seen.add(event_id)
            if validate_every and stats["requests"] % validate_every == 0:
                method = self.parser.get_method().decode()
                url = f"http://{self.headers.get(b'host', b'').decode()}{self.url.decode()}"
                valid = validate_v3_signature(
                    method,
                    url,
                    self.headers.get(b"x-plivo-signature-v3-nonce", b"").decode(),
                    token,
                    self.headers.get(b"x-plivo-signature-v3", b"").decode(),
                    params if method == "POST" else None,
                )
                stats["validated" if valid else "invalid"] += 1
            self.transport.write(ok)
            if not self.parser.should_keep_alive():
                self.transport.close()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        server = await loop.create_server(Handler, "127.0.0.1", port, backlog=1024)
        print("ready", flush=True)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop, MAX_SECONDS * 4)
        server.close()

    uvloop.run(serve())


@contextmanager
def receiver(port: int, validate_every: int, token: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(port), str(validate_every), token],
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the receiver did not start")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def receiver_stats(port: int) -> dict[str, object]:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()  # type: ignore[no-any-return]


# --- the outbox ---------------------------------------------------------------------------


async def create_sessions(url: str, count: int) -> tuple[Account, list[Session]]:
    """One account, ``POOL`` numbers and ``count`` sessions (no callback URL of their own:
    the bench writes their events)."""
    from veil.clock import SystemClock
    from veil.domain.session_params import Profile, parse_create
    from veil.service import accounts, numbers, sessions
    from veil.service.context import ServiceContext
    from veil.store.db import Database

    db = Database(url)
    ctx = ServiceContext(db=db, clock=SystemClock())
    try:
        account = await accounts.create_account(ctx, name="bench")
        await numbers.add_numbers(ctx, account, [f"+1415{3000000 + i}" for i in range(POOL)])
        made = []
        for i in range(count):
            request = parse_create(
                {
                    "first_party": f"+1917{2000000 + i}",
                    "second_party": f"+1718{2000000 + i}",
                    "session_expiry": 86400,
                },
                Profile.CURRENT,
            )
            made.append(await sessions.create_session(ctx, account, request))
        return account, made
    finally:
        await db.dispose()


def event_plan(total: int, rng: random.Random) -> list[int]:
    """Session indexes, one per event, 1-10 events per session, shuffled (each session's
    events then take its next sequence numbers in that order)."""
    plan: list[int] = []
    session = 0
    while len(plan) < total:
        plan.extend([session] * min(rng.randint(1, 10), total - len(plan)))
        session += 1
    rng.shuffle(plan)
    return plan


class Producer:
    """Writes outbox rows for the sessions, as the call plane would."""

    def __init__(self, url: str, target: str, sessions: list[Session]) -> None:
        from veil.store.db import Database

        self.db = Database(url)
        self.target = target
        self.sessions = sessions
        self.step: dict[int, int] = {}

    async def write(self, indexes: list[int]) -> None:
        from functools import partial

        from veil.store.outbox import enqueue_session_event

        async with self.db.write() as conn:
            for index in indexes:
                step = self.step.get(index, 0)
                self.step[index] = step + 1
                now = datetime.now(UTC)
                build = partial(self.callback, index, step, now)
                await enqueue_session_event(conn, self.sessions[index], now, build)

    def callback(self, index: int, step: int, now: datetime, sequence: int) -> Callback:
        """The ``step``-th event of session ``index``, as a call would report it."""
        session = self.sessions[index]
        params = {
            "EventName": EVENTS[step % len(EVENTS)],
            "EventTimestamp": format_event_time(now),
            "SessionUUID": session.uuid,
            "VirtualNumber": session.virtual_number.lstrip("+"),
            "SequenceNumber": str(sequence),
            "From": session.first_party.lstrip("+"),
            "To": session.second_party.lstrip("+"),
            "CallUUID": f"{step:08d}-0000-4000-8000-{index:012d}",
        }
        return Callback(self.target, "POST", params["EventName"], params)

    async def fill(self, plan: list[int], batch: int = 500) -> None:
        for start in range(0, len(plan), batch):
            await self.write(plan[start : start + batch])

    async def at_rate(self, plan: list[int], rate: int) -> float:
        """Open loop: ``len(plan)`` rows at ``rate`` per second, a batch every 10 ms.
        Returns how far behind schedule the last batch was written, in seconds."""
        tick = 0.01
        per_tick = rate * tick
        start = time.monotonic()
        written = 0
        n = 0
        while written < len(plan):
            n += 1
            due = min(len(plan), round(n * per_tick))
            await self.write(plan[written:due])
            written = due
            await asyncio.sleep(max(0.0, start + n * tick - time.monotonic()))
        return max(0.0, time.monotonic() - start - len(plan) / rate)

    async def close(self) -> None:
        await self.db.dispose()


async def outbox_report(url: str, first_id: int = 0) -> dict[str, object]:
    """Status counts, retries and created -> delivered latency of rows above ``first_id``."""
    from sqlalchemy import func, select

    from veil.store.db import Database
    from veil.store.tables import outbox

    db = Database(url)
    try:
        async with db.read() as conn:
            grouped = await conn.execute(
                select(outbox.c.status, func.count())
                .where(outbox.c.id > first_id)
                .group_by(outbox.c.status)
            )
            counts: dict[str, int] = {row[0]: row[1] for row in grouped}  # type: ignore[misc]
            retried = (
                await conn.execute(
                    select(func.count()).where(outbox.c.id > first_id, outbox.c.attempts > 1)
                )
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(outbox.c.created_time, outbox.c.delivered_time).where(
                        outbox.c.id > first_id, outbox.c.delivered_time.is_not(None)
                    )
                )
            ).all()
            last_id = (await conn.execute(select(func.max(outbox.c.id)))).scalar_one() or 0
    finally:
        await db.dispose()
    latencies = sorted((r.delivered_time - r.created_time).total_seconds() * 1000 for r in rows)
    return {
        "status": counts,
        "retried": retried,
        "latency_ms": {q: round(percentile(latencies, q / 100), 1) for q in (50, 90, 99, 100)},
        "last_id": last_id,
    }


async def pending(url: str) -> int:
    from sqlalchemy import func, select

    from veil.store.db import Database
    from veil.store.tables import outbox

    db = Database(url)
    try:
        async with db.read() as conn:
            return int(
                (
                    await conn.execute(select(func.count()).where(outbox.c.status == "pending"))
                ).scalar_one()
            )
    finally:
        await db.dispose()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the runs -----------------------------------------------------------------------------


def wait_for(port: int, total: int, deadline: float) -> dict[str, object]:
    """Poll the receiver until it has ``total`` requests or the deadline passes."""
    while True:
        stats = receiver_stats(port)
        if int(stats["requests"]) >= total or time.monotonic() > deadline:  # type: ignore[call-overload]
            return stats
        time.sleep(0.25)


def drain_rate(stats: dict[str, object], start: int = 0) -> dict[str, float]:
    """Overall rate from first to last request, and the median of the full seconds."""
    requests = int(stats["requests"]) - start  # type: ignore[call-overload]
    elapsed = float(stats["last"]) - float(stats["first"])  # type: ignore[arg-type]
    seconds = [c for _, c in stats["per_second"]][1:-1]  # type: ignore[attr-defined]
    return {
        "requests": requests,
        "elapsed_s": round(elapsed, 2),
        "per_s": round(requests / elapsed, 1) if elapsed > 0 else float("nan"),
        "median_full_second": float(sorted(seconds)[len(seconds) // 2]) if seconds else 0.0,
    }


def bench(args: argparse.Namespace, concurrency: int) -> dict[str, object]:
    from tests.servers import database, free_port, veil_server

    rng = random.Random(20261127)
    backlog = event_plan(args.events, rng)
    steady = event_plan(args.rate * args.seconds, rng) if args.rate * args.seconds else []
    result: dict[str, object] = {"backend": args.backend, "concurrency": concurrency}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database(args.backend, workdir))
        count = max(backlog) + 1 + (max(steady) + 1 if steady else 0)
        print(f"[c={concurrency}] creating {count} sessions ...", flush=True)
        account, made = asyncio.run(create_sessions(url, count))
        port = free_port()
        target = f"http://127.0.0.1:{port}/hook"
        token = account.auth_token
        recv = stack.enter_context(receiver(port, args.validate_every, token))

        print(f"[c={concurrency}] writing {len(backlog)} outbox rows ...", flush=True)
        first_of_steady = max(backlog) + 1

        async def fill() -> None:
            producer = Producer(url, target, made)
            try:
                await producer.fill(backlog)
            finally:
                await producer.close()

        started = time.monotonic()
        asyncio.run(fill())
        result["fill_s"] = round(time.monotonic() - started, 1)

        server = stack.enter_context(
            veil_server(url, workdir, VEIL_WEBHOOK_CONCURRENCY=str(concurrency))
        )
        veil_cpu0, recv_cpu0 = cpu_seconds(server.process.pid), cpu_seconds(recv.pid)
        deadline = time.monotonic() + min(MAX_SECONDS, 30 + len(backlog) / 50)
        stats = wait_for(port, len(backlog), deadline)
        veil_cpu = cpu_seconds(server.process.pid) - veil_cpu0
        recv_cpu = cpu_seconds(recv.pid) - recv_cpu0
        rate = drain_rate(stats)
        settle_by = time.monotonic() + 10  # rows are settled just after their request
        while (left := asyncio.run(pending(url))) and time.monotonic() < settle_by:
            time.sleep(0.2)
        report = asyncio.run(outbox_report(url))
        result["drain"] = rate | {
            "pending_left": left,
            "duplicates": stats["duplicates"],
            "connections": stats["connections"],
            "signatures_valid": stats["validated"],
            "signatures_invalid": stats["invalid"],
            "veil_cpu_s": round(veil_cpu, 1),
            "veil_cpu_ms_per_delivery": round(veil_cpu * 1000 / max(1, rate["requests"]), 3),
            "receiver_cpu_s": round(recv_cpu, 1),
            "outbox": report,
        }
        print(json.dumps(result["drain"]), flush=True)

        if steady:
            print(f"[c={concurrency}] fixed rate {args.rate}/s for {args.seconds} s ...")
            before = int(stats["requests"])  # type: ignore[call-overload]
            plan = [first_of_steady + i for i in steady]
            last_id = int(report["last_id"])  # type: ignore[call-overload]
            veil_cpu0, recv_cpu0 = cpu_seconds(server.process.pid), cpu_seconds(recv.pid)

            async def produce() -> float:
                producer = Producer(url, target, made)
                try:
                    return await producer.at_rate(plan, args.rate)
                finally:
                    await producer.close()

            started = time.monotonic()
            behind = asyncio.run(produce())
            stats = wait_for(port, before + len(plan), time.monotonic() + 60)
            elapsed = time.monotonic() - started
            report = asyncio.run(outbox_report(url, last_id))
            result["fixed_rate"] = {
                "offered_per_s": args.rate,
                "rows": len(plan),
                "producer_behind_s": round(behind, 2),
                "delivered": int(stats["requests"]) - before,  # type: ignore[call-overload]
                "veil_cpu_pct": round(
                    100 * (cpu_seconds(server.process.pid) - veil_cpu0) / elapsed, 1
                ),
                "receiver_cpu_pct": round(100 * (cpu_seconds(recv.pid) - recv_cpu0) / elapsed, 1),
                "outbox": report,
            }
            print(json.dumps(result["fixed_rate"]), flush=True)
        errors = [line for line in server.log().splitlines() if "ERROR" in line]
        result["veil_log_errors"] = len(errors)
    return result


def profile(args: argparse.Namespace) -> None:
    """DeliveryWorker in this process under cProfile, over a prefilled database."""
    import uvloop

    from tests.servers import database, free_port
    from veil.clock import SystemClock
    from veil.store.db import Database
    from veil.webhooks.delivery import DeliveryConfig, DeliveryWorker

    concurrency = int(args.concurrency.split(",")[0])
    rng = random.Random(20261127)
    plan = event_plan(args.events, rng)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database(args.backend, workdir))
        account, made = asyncio.run(create_sessions(url, max(plan) + 1))
        port = free_port()
        recv = stack.enter_context(receiver(port, 0, account.auth_token))

        async def fill() -> None:
            producer = Producer(url, f"http://127.0.0.1:{port}/hook", made)
            try:
                await producer.fill(plan)
            finally:
                await producer.close()

        asyncio.run(fill())

        async def drain() -> float:
            db = Database(url)
            worker = DeliveryWorker(db, SystemClock(), DeliveryConfig(concurrency=concurrency))
            started = time.monotonic()
            worker.start()
            deadline = started + MAX_SECONDS
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                stats = await asyncio.to_thread(receiver_stats, port)
                if int(stats["requests"]) >= len(plan):  # type: ignore[call-overload]
                    break
            elapsed = time.monotonic() - started
            await worker.stop()
            await db.dispose()
            return elapsed

        recv_cpu0 = cpu_seconds(recv.pid)
        profiler = cProfile.Profile()
        profiler.enable()
        elapsed = uvloop.run(drain())
        profiler.disable()
        stats = receiver_stats(port)
        print(
            f"in-process drain: {stats['requests']} in {elapsed:.1f} s "
            f"({int(stats['requests']) / elapsed:.0f}/s under cProfile), "  # type: ignore[call-overload]
            f"receiver CPU {cpu_seconds(recv.pid) - recv_cpu0:.1f} s"
        )
        out = io.StringIO()
        ps = pstats.Stats(profiler, stream=out)
        ps.sort_stats("tottime").print_stats(40)
        ps.sort_stats("cumulative").print_stats(60)
        print(out.getvalue())


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--receiver":
        receiver_main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=20_000, help="backlog rows to drain")
    parser.add_argument("--concurrency", default="32,128", help="VEIL_WEBHOOK_CONCURRENCY runs")
    parser.add_argument("--rate", type=int, default=500, help="rows/s of the fixed-rate phase")
    parser.add_argument("--seconds", type=int, default=10, help="fixed-rate phase (max 60)")
    parser.add_argument("--validate-every", type=int, default=50, help="0: no signature checks")
    parser.add_argument("--profile", action="store_true", help="cProfile an in-process drain")
    args = parser.parse_args()
    args.events = max(1, min(args.events, MAX_EVENTS))
    args.seconds = max(0, min(args.seconds, 60))
    args.rate = max(0, min(args.rate, 5000))
    if args.profile:
        profile(args)
        return
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        print(json.dumps(bench(args, concurrency), indent=2), flush=True)


if __name__ == "__main__":
    main()
