"""How many virtual numbers each allocation policy needs for the same traffic.

For every trace of bench/pool_traces.py (and, when geomatched, every country's share):
- N, the most numbers one party holds at once: no pool smaller than N can serve the
  trace; Plivo's sizing rule asks for 2N - 1;
- the smallest pool that serves every session with no "pool exhausted", for Veil's
  policy, first-fit and random choice (the median of 5 seeds), found by the in-memory
  replay (veil.domain.pool_replay);
- how many sessions each policy refuses at a fixed pool of N numbers;
- the check that the replay is Veil's real allocator: the trace is run through
  veil.service.sessions.create_session on a real SQLite database (in-process, a fake
  clock at each session's start), with Veil's pool size and one number fewer: every
  session must get the very number the replay gave it, nothing is refused at Veil's
  size, and something is refused with one number fewer;
- with ``--seeds K``, Veil against first-fit on K other seeds of each random trace.

Usage: python bench/pool.py [--traces marketplace,hub,...] [--no-store] [--seeds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pool_traces import SEEDS, TRACES, Trace, country_of, shipped
from veil.clock import FakeClock
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import InvalidRequest
from veil.domain.pool_replay import Policy, TraceSession, busiest_party, pool_needed, replay
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.store import migrate
from veil.store.db import Database

RANDOM_SEEDS = range(5)
_POOL_PREFIX = {"US": ("+1415", 7), "IN": ("+9190", 8)}


@dataclass
class Row:
    name: str
    sessions: int
    n: int
    needed: dict[Policy, int]
    refused_at_n: dict[Policy, int]
    store: str = "not run"


def measure(name: str, share: Sequence[TraceSession]) -> Row:
    n = busiest_party(share)
    needed = {
        Policy.VEIL: pool_needed(share, Policy.VEIL),
        Policy.FIRST_FIT: pool_needed(share, Policy.FIRST_FIT),
        Policy.RANDOM: round(
            statistics.median(pool_needed(share, Policy.RANDOM, seed) for seed in RANDOM_SEEDS)
        ),
    }
    refused = {policy: replay(share, n, policy).count(None) for policy in Policy}
    return Row(name, len(share), n, needed, refused)


def pool_numbers(country: str, count: int) -> list[str]:
    prefix, width = _POOL_PREFIX[country]
    return [prefix + str(2_000_000 + i).rjust(width, "0") for i in range(count)]


def run_on_store(trace: Trace, sizes: dict[str, int]) -> list[int | None]:
    """Each session's number (its index in its country's pool, in id order), or None when
    Veil refused it, running the trace through the real service on a new SQLite file."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{directory}/pool.db"
        migrate.upgrade(url)
        return asyncio.run(_run(url, trace, sizes))


async def _run(url: str, trace: Trace, sizes: dict[str, int]) -> list[int | None]:
    origin = datetime(2026, 1, 5, tzinfo=UTC)
    clock = FakeClock(origin)
    ctx = ServiceContext(db=Database(url), clock=clock)
    try:
        account = await accounts.create_account(ctx, name="pool bench")
        index: dict[str, int] = {}
        for country, size in sizes.items():
            added = await numbers.add_numbers(ctx, account, pool_numbers(country, size))
            # The pool's id order is the order the numbers were added in.
            index.update((n.e164, i) for i, n in enumerate(added))
        got: list[int | None] = []
        for s in sorted(trace.sessions, key=lambda s: s.start):
            number = await offer(
                ctx, account, s, geomatch=trace.geomatch, origin=origin, clock=clock
            )
            got.append(None if number is None else index[number])
        return got
    finally:
        await ctx.db.dispose()


async def offer(
    ctx: ServiceContext,
    account: Account,
    s: TraceSession,
    *,
    geomatch: bool,
    origin: datetime,
    clock: FakeClock,
) -> str | None:
    """Create the session through the service at its start (``origin`` + its start on
    ``clock``): its virtual number, or None when Veil says the pool is exhausted."""
    clock.advance((origin + timedelta(seconds=s.start) - clock.now()).total_seconds())
    body = {
        "first_party": s.parties[0],
        "second_party": s.parties[1],
        "session_expiry": int(s.expiry),
        "virtual_number_cooloff_period": int(s.cooloff),
        "geomatch": geomatch,
    }
    try:
        session = await sessions.create_session(ctx, account, parse_create(body, Profile.CURRENT))
    except InvalidRequest as refused:
        if str(refused) != messages.POOL_EXHAUSTED:
            raise
        return None
    return session.virtual_number


def expected(trace: Trace, sizes: dict[str, int]) -> list[int | None]:
    """The replay's numbers for the whole trace, country by country, in start order."""
    ordered = sorted(trace.sessions, key=lambda s: s.start)
    by_country = {
        c: iter(replay([s for s in ordered if country_of(s) == c], size))
        for c, size in sizes.items()
    }
    return [next(by_country[country_of(s)]) for s in ordered]


def check_store(trace: Trace, veil_sizes: dict[str, int]) -> str:
    """Run the trace on the real allocator at Veil's size and one number fewer per country."""
    smaller = {c: size - 1 for c, size in veil_sizes.items()}
    for sizes in (veil_sizes, smaller):
        got = run_on_store(trace, sizes)
        want = expected(trace, sizes)
        if got != want:
            first = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            return (
                f"DIFFERS at session {first} with pools {sizes}: "
                f"store {got[first]}, replay {want[first]}"
            )
    refused = got.count(None)
    return f"same numbers; 0 refused at Veil's size, {refused} with one fewer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=",".join(TRACES))
    parser.add_argument("--no-store", action="store_true", help="skip the real-store check")
    parser.add_argument(
        "--seeds", type=int, default=0, help="also compare Veil and first-fit on this many seeds"
    )
    args = parser.parse_args()
    rows = []
    for name in args.traces.split(","):
        trace = shipped(name)
        started = time.perf_counter()
        shares = {c: [s for s in trace.sessions if country_of(s) == c] for c in trace.countries}
        measured = {
            c: measure(name if len(shares) == 1 else f"{name} ({c})", share)
            for c, share in shares.items()
        }
        if not args.no_store:
            verdict = check_store(
                trace, {c: row.needed[Policy.VEIL] for c, row in measured.items()}
            )
            for row in measured.values():
                row.store = verdict
        rows.extend(measured.values())
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)

    print(
        "| trace | sessions | N | 2N - 1 | Veil | first-fit | random "
        "| refused at N: Veil / first-fit / random |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        refused = " / ".join(str(r.refused_at_n[p]) for p in Policy)
        print(
            f"| {r.name} | {r.sessions} | {r.n} | {2 * r.n - 1} | {r.needed[Policy.VEIL]} "
            f"| {r.needed[Policy.FIRST_FIT]} | {r.needed[Policy.RANDOM]} | {refused} |"
        )
    print()
    for r in rows:
        print(f"- {r.name}: real allocator on SQLite: {r.store}")
    if args.seeds:
        print()
        compare_seeds(args.traces.split(","), args.seeds)


def compare_seeds(names: Sequence[str], count: int) -> None:
    """Veil against first-fit on other seeds of each random trace (replay only)."""
    print(f"| trace (seeds 100 .. {99 + count}) | Veil fewer | same | Veil more |")
    print("|---|---:|---:|---:|")
    for name in names:
        if name not in SEEDS or name == "anti-first-fit":  # no randomness in it
            continue
        outcome = {"fewer": 0, "same": 0, "more": 0}
        for seed in range(100, 100 + count):
            trace = TRACES[name](seed)
            for country in trace.countries:
                share = [s for s in trace.sessions if country_of(s) == country]
                veil = pool_needed(share, Policy.VEIL)
                first_fit = pool_needed(share, Policy.FIRST_FIT)
                verdict = "fewer" if veil < first_fit else "more" if veil > first_fit else "same"
                outcome[verdict] += 1
        print(f"| {name} | {outcome['fewer']} | {outcome['same']} | {outcome['more']} |")


if __name__ == "__main__":
    main()
