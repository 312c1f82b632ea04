"""Session allocation latency with a full pool: is p99 <= 2 ms at 10,000 live sessions?

Drives Veil's service layer in-process (no HTTP), on a scratch database migrated as
``veil db upgrade`` does (a temporary SQLite file; on PostgreSQL a database of its own,
created and dropped as the tests do, ``tests.servers.database``). One account, ``--numbers``
US numbers (+1415...). The fill: ``--sessions`` live sessions (session_expiry 86400; the
FakeClock moves 10 ms per create, never near the expiry) through
``veil.service.sessions.create_session``, round-robin over 200 agents (50 live sessions
each at the defaults) with customers (+1646...) of whom a quarter come back once, to
another agent. Then, one at a time (no concurrency), ``--samples`` rounds of:

1. expire the oldest live session (``expire_session``, untimed), so the live count stays
   at ``--sessions`` and each agent at 50;
2. pick the request for that same agent: 20% the customer of the session just expired
   (the pair's previous number is free again: the sticky path), 20% a customer coming
   back to another agent, 60% a new customer; parsed by ``parse_create`` as the API does;
3. "allocate, rolled back": ``veil.service.sessions._allocate`` for it in a write
   transaction that is then rolled back (the statements of a create without its COMMIT),
   each statement timed with its rows fetched (a ``Conn`` that passes them on and
   buffers their rows, which the total includes);
4. "create_session": the whole use case for the same request (the allocation of step 3
   and its COMMIT: what a client waits for, less HTTP);
5. "round trips alone": a write transaction, rolled back, of as many ``SELECT 1`` as the
   allocation of step 3 ran statements, sent straight to the driver (``Conn.run``; the
   first carries the BEGIN, as the allocation's first does) and timed the same way: what
   this machine's round trips cost when the statements do nothing.

Times are wall (``time.perf_counter_ns``) and this process's CPU (``process_time_ns``,
which tells a busy machine's scheduling apart from Veil's own work). ``--explain`` prints
the plans (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN (ANALYZE) of the generic plan
the allocation's planner settings make, in a transaction rolled back;
``tests.plans.explain``) of the statements of the measured allocation that read the most
rows.

PostgreSQL gets ANALYZE after the numbers, every 1,000 sessions of the fill and at its
end, standing in for autovacuum (off on this CI server). ``--no-analyze`` skips it: then
the plans asyncpg's prepared statements cached while the tables were empty stay in use
(the sticky SELECT filters every session of the account). SQLite gets none: Veil never
runs ANALYZE there.

``--ahead K`` first gives another account K numbers (+1628...), so that the measured
pool's numbers come after theirs in id order, as a small tenant's do behind a large one's.

The event loop is uvloop, as in ``veil serve`` (uvicorn takes it when installed, and
Veil depends on it); ``--loop asyncio`` runs on asyncio's own.

Usage: python bench/allocation.py [--backends sqlite,postgresql] [--sessions 10000]
       [--numbers 1000] [--samples 2000] [--ahead 0] [--no-analyze] [--explain]
       [--loop uvloop|asyncio]
Counts are capped; nothing runs concurrently; the only process is this one.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import random
import re
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import uvloop
from sqlalchemy import Executable, TextClause, text
from sqlalchemy.engine import CursorResult, Dialect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import plans
from tests.servers import database
from veil.clock import FakeClock
from veil.domain.accounts import Account
from veil.domain.session_params import Profile, SessionRequest, parse_create
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.store.db import Conn, Database, Hot, Params

AGENTS = 200
EXPIRY = 86400  # seconds: every session stays live for the whole run
TICK = 0.01  # seconds the FakeClock moves per create
RETURNING = 0.25  # share of fill customers who come back once, to another agent
ANALYZE_EVERY = 1000  # sessions between two ANALYZEs of the fill (PostgreSQL)
LIMIT_MS = 2.0


@dataclass(frozen=True, slots=True)
class Pair:
    customer: str
    agent: str


class Workload:
    """Who talks to whom: agents round-robin, customers new or coming back (seeded)."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.customers = 0
        self.singles: list[Pair] = []  # customers with one session so far

    def agent(self, i: int) -> str:
        return f"+1646{2000000 + i % AGENTS}"

    def new(self, agent: str) -> Pair:
        self.customers += 1
        pair = Pair(f"+1646{3000000 + self.customers}", agent)
        self.singles.append(pair)
        return pair

    def returning(self, agent: str) -> Pair | None:
        """A customer with one session so far, back for a second one with ``agent``."""
        if not self.singles:
            return None
        index = self.rng.randrange(len(self.singles))
        earlier = self.singles[index]
        if earlier.agent == agent:
            return None
        self.singles[index] = self.singles[-1]
        self.singles.pop()
        return Pair(earlier.customer, agent)

    def fill_pair(self, i: int) -> Pair:
        agent = self.agent(i)
        pair = self.returning(agent) if self.rng.random() < RETURNING else None
        return pair or self.new(agent)

    def measured_pair(self, i: int, expired: Pair) -> Pair:
        agent = self.agent(i)
        draw = self.rng.random()
        if draw < 0.2 and expired.agent == agent:
            return expired  # the same pair again: its previous number is free (sticky)
        pair = self.returning(agent) if draw < 0.4 else None
        return pair or self.new(agent)


def request_for(pair: Pair) -> SessionRequest:
    body = {"first_party": pair.customer, "second_party": pair.agent, "session_expiry": EXPIRY}
    return parse_create(body, Profile.CURRENT)


Call = tuple[Executable | Hot, Params, int, int]  # statement, parameters, nanoseconds, rows


@dataclass
class Recording:
    """A ``Conn`` that passes statements on and times each one, its rows fetched (into a
    buffered result) included."""

    conn: Conn
    calls: list[Call] = field(default_factory=list)

    @property
    def dialect(self) -> Dialect:
        return self.conn.dialect

    async def execute(self, statement: Executable, parameters: Params = None) -> CursorResult[Any]:
        began = time.perf_counter_ns()
        result = await self.conn.execute(statement, parameters)
        if not result.returns_rows:
            self.calls.append((statement, parameters, time.perf_counter_ns() - began, 0))
            return result
        frozen = result.freeze()
        self.calls.append((statement, parameters, time.perf_counter_ns() - began, len(frozen.data)))
        return cast(CursorResult[Any], frozen())

    async def fetch(
        self, statement: Hot, parameters: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        began = time.perf_counter_ns()
        rows = await self.conn.fetch(statement, parameters)
        self.calls.append((statement, parameters, time.perf_counter_ns() - began, len(rows)))
        return rows

    async def run(self, sql: str) -> None:
        began = time.perf_counter_ns()
        await self.conn.run(sql)
        nanos = time.perf_counter_ns() - began
        self.calls.append((_script(_shape(sql)), None, nanos, 0))


@functools.cache
def _script(shape: str) -> TextClause:
    return text(shape)


def _shape(sql: str) -> str:
    """``sql`` with its numbers (the advisory locks' ids) left out, to label it by."""
    return re.sub(r"-?\d{4,}", "?", sql)


class _Rollback(Exception):
    """Raised inside ``Database.write`` so the allocation is rolled back."""


_labels: dict[Executable | Hot, str] = {}


def label(statement: Executable | Hot) -> str:
    if statement not in _labels:
        shown = statement.statement if isinstance(statement, Hot) else statement
        sql = " ".join(str(shown).split())
        _labels[statement] = (sql[:72] + "...").replace("|", r"\|")
    return _labels[statement]


def summary(nanos: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles, in milliseconds."""
    ordered = sorted(nanos)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1e6

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": ordered[-1] / 1e6}


async def analyze(db: Database) -> None:
    async with db.read() as conn:
        await conn.execute(text("ANALYZE"))


async def explain(db: Database, calls: list[Call]) -> None:
    """Print the plan of each statement of one allocation that reads numbers, with the
    parameters it had, as ``tests.plans.explain`` makes it."""
    for statement, params, _, fetched in calls:
        if isinstance(statement, Hot) and isinstance(params, Mapping):
            print(f"\n{label(statement)} ({fetched} rows)")
            for line in (await plans.explain(db, statement, params)).splitlines():
                print("    " + line)


@dataclass
class Result:
    fill_seconds: float = 0.0
    live: int = 0
    create: list[int] = field(default_factory=list)  # wall nanoseconds
    create_cpu: list[int] = field(default_factory=list)  # this process's CPU nanoseconds
    allocate: list[int] = field(default_factory=list)
    allocate_cpu: list[int] = field(default_factory=list)
    trips: list[int] = field(default_factory=list)  # "round trips alone"
    trips_cpu: list[int] = field(default_factory=list)
    statements: defaultdict[str, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )


async def allocate_rolled_back(
    ctx: ServiceContext, account: Account, request: SessionRequest, result: Result
) -> list[Call]:
    """``_allocate`` in a write transaction that is then rolled back, timed."""
    with suppress(_Rollback):
        async with ctx.db.write() as conn:
            recording = Recording(conn)
            began, cpu = time.perf_counter_ns(), time.process_time_ns()
            await sessions._allocate(ctx, recording, account, request)
            result.allocate.append(time.perf_counter_ns() - began)
            result.allocate_cpu.append(time.process_time_ns() - cpu)
            raise _Rollback
    await asyncio.sleep(0)  # SQLite: let the (empty) group commit run before the next write
    for statement, _, nanos, fetched in recording.calls:
        result.statements[label(statement)].append((nanos, fetched))
    return recording.calls


async def round_trips_rolled_back(ctx: ServiceContext, count: int, result: Result) -> None:
    """``count`` statements that do nothing, timed as ``allocate_rolled_back`` times."""
    with suppress(_Rollback):
        async with ctx.db.write() as conn:
            recording = Recording(conn)
            began, cpu = time.perf_counter_ns(), time.process_time_ns()
            for _ in range(count):
                await recording.run("SELECT 1")
            result.trips.append(time.perf_counter_ns() - began)
            result.trips_cpu.append(time.process_time_ns() - cpu)
            raise _Rollback
    await asyncio.sleep(0)


async def measure(
    url: str, total: int, pool: int, samples: int, *, ahead: int, stats: bool, plans: bool
) -> Result:
    db = Database(url)
    clock = FakeClock()
    ctx = ServiceContext(db=db, clock=clock)
    workload = Workload()
    result = Result()
    stats = stats and not db.is_sqlite
    try:
        other = await accounts.create_account(ctx, name="ahead")
        for first in range(0, ahead, 1000):  # numbers with lower ids than the measured pool's
            block = range(first, min(first + 1000, ahead))
            await numbers.add_numbers(ctx, other, [f"+1628{2000000 + i}" for i in block])
        account = await accounts.create_account(ctx, name="bench")
        await numbers.add_numbers(ctx, account, [f"+1415{3000000 + i}" for i in range(pool)])

        live: deque[tuple[str, Pair]] = deque()  # oldest first
        start = time.perf_counter()
        for i in range(total):
            if stats and i % ANALYZE_EVERY == 0:
                await analyze(db)
            pair = workload.fill_pair(i)
            session = await sessions.create_session(ctx, account, request_for(pair))
            live.append((session.uuid, pair))
            clock.advance(TICK)
        if stats:
            await analyze(db)
        result.fill_seconds = time.perf_counter() - start

        heaviest: tuple[int, list[Call]] = (-1, [])  # the allocation that read most rows
        for i in range(total, total + samples):
            expired_uuid, expired = live.popleft()
            await sessions.expire_session(ctx, account, expired_uuid)
            request = request_for(workload.measured_pair(i, expired))
            calls = await allocate_rolled_back(ctx, account, request, result)
            await round_trips_rolled_back(ctx, len(calls), result)
            heaviest = max(heaviest, (sum(c[3] for c in calls), calls), key=lambda h: h[0])
            began, cpu = time.perf_counter_ns(), time.process_time_ns()
            session = await sessions.create_session(ctx, account, request)
            result.create.append(time.perf_counter_ns() - began)
            result.create_cpu.append(time.process_time_ns() - cpu)
            live.append((session.uuid, Pair(session.first_party, session.second_party)))
            clock.advance(TICK)
        result.live = len(live)
        if plans:
            print(f"(the measured allocation that read the most rows: {heaviest[0]})")
            await explain(db, heaviest[1])
        return result
    finally:
        await db.dispose()


@contextmanager
def scratch_database(backend: str) -> Iterator[str]:
    """A new database migrated like ``veil db upgrade``; removed afterwards."""
    with tempfile.TemporaryDirectory() as directory, database(backend, Path(directory)) as url:
        yield url


def run(loop: str, main: Coroutine[Any, Any, Result]) -> Result:
    """``main`` on the event loop ``veil serve`` runs (uvicorn picks uvloop when it is
    installed, and it is a dependency), or on asyncio's own."""
    if loop == "uvloop":
        return uvloop.run(main)
    return asyncio.run(main)


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--ahead", type=int, default=0)
    parser.add_argument("--no-analyze", action="store_true")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or not set(backends) <= {"sqlite", "postgresql"}:
        parser.error("--backends: sqlite and/or postgresql")
    total = max(1, min(args.sessions, 100_000))
    pool = max(1, min(args.numbers, 100_000))
    samples = max(1, min(args.samples, 20_000))
    ahead = max(0, min(args.ahead, 100_000))

    load_before = os.getloadavg()[0]
    results: dict[str, Result] = {}
    for backend in backends:
        with scratch_database(backend) as url:
            if args.explain:
                print(f"\n## {backend}: plans of one allocation's statements")
            results[backend] = run(
                args.loop,
                measure(
                    url,
                    total,
                    pool,
                    samples,
                    ahead=ahead,
                    stats=not args.no_analyze,
                    plans=args.explain,
                ),
            )

    print(
        f"\n{total:,} live sessions, {pool:,} numbers ({ahead:,} of another account "
        f"ahead of them), {AGENTS} agents; one request at a time, on {args.loop}; "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after. Milliseconds; CPU is this process's (Veil's "
        "Python and SQLite; not PostgreSQL's server).\n"
    )
    head = ["backend", "measured", "count", "p50", "p90", "p99", "max", "CPU p50", "CPU p99"]
    print(row([*head, "p99 <= 2 ms"]))
    print(row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"]))
    for backend, r in results.items():
        for title, wall, cpu in (
            ("create_session", r.create, r.create_cpu),
            ("allocate, rolled back", r.allocate, r.allocate_cpu),
            ("round trips alone", r.trips, r.trips_cpu),
        ):
            s, c = summary(wall), summary(cpu)
            cells = [f"{s[q]:.3f}" for q in ("p50", "p90", "p99", "max")]
            cells += [f"{c['p50']:.3f}", f"{c['p99']:.3f}"]
            verdict = "yes" if s["p99"] <= LIMIT_MS else "**no**"
            if wall is r.trips:
                verdict = "(the floor)"
            print(row([backend, title, str(len(wall)), *cells, verdict]))
    print("\nStatements of the rolled-back allocations (rows fetched included):\n")
    print(row(["backend", "statement", "calls", "rows/call", "p50", "p90", "p99", "max"]))
    print(row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:"]))
    for backend, r in results.items():
        for name, calls in r.statements.items():
            s = summary([nanos for nanos, _ in calls])
            cells = [f"{s[q]:.3f}" for q in ("p50", "p90", "p99", "max")]
            fetched = sum(rows for _, rows in calls) / len(calls)
            print(row([backend, f"`{name}`", str(len(calls)), f"{fetched:.0f}", *cells]))
    print()
    for backend, r in results.items():
        print(
            f"{backend} fill: {total:,} sessions through create_session in "
            f"{r.fill_seconds:.1f} s ({r.fill_seconds / total * 1e3:.2f} ms each); "
            f"{r.live:,} live while measuring."
        )


if __name__ == "__main__":
    main()
