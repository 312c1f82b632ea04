"""The in-memory replay is Veil's real allocator: the same traffic, run through
``create_session`` on SQLite and PostgreSQL, gets the very numbers the replay predicts.

That is what lets the operator report (and bench/pool.py) size a pool by replaying
traffic in memory instead of against the database.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.pool import offer
from bench.pool_traces import anti_first_fit, capacity_bound
from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.clock import FakeClock
from veil.domain.pool_replay import TraceSession, pool_needed, replay
from veil.service import accounts, numbers
from veil.service.context import ServiceContext

TRACES = {
    "anti-first-fit": lambda: anti_first_fit(n=4, rounds=2),
    "capacity-bound with cool-off": lambda: capacity_bound(
        11, sides=(8, 12), capacities=(4, 3), mean_minutes=10, hours=1, cooloff=120
    ),
}


def run_trace(url: str, trace: list[TraceSession], size: int) -> list[int | None]:
    """Each session's number as an index into the pool (in the order added), or None."""
    # Fresh party numbers for this run: the database is shared with other tests.
    rename: dict[str, str] = {}
    renamed = [
        replace(s, parties=tuple(rename.setdefault(p, party_number()) for p in s.parties))
        for s in sorted(trace, key=lambda s: s.start)
    ]

    async def scenario(ctx: ServiceContext, clock: FakeClock) -> list[int | None]:
        account = await accounts.create_account(ctx, name="replay")
        added = await numbers.add_numbers(ctx, account, [pool_number() for _ in range(size)])
        index = {n.e164: i for i, n in enumerate(added)}
        origin = clock.now()
        got: list[int | None] = []
        for s in renamed:
            number = await offer(ctx, account, s, geomatch=True, origin=origin, clock=clock)
            got.append(None if number is None else index[number])
        return got

    return run_scenario(url, scenario)


@pytest.mark.parametrize("name", list(TRACES))
def test_the_real_allocator_gives_the_replays_numbers(service_database: str, name: str) -> None:
    trace = TRACES[name]()
    needed = pool_needed(trace)
    for size in (needed - 1, needed):
        predicted = replay(trace, size)
        assert run_trace(service_database, trace, size) == predicted
        # One number fewer than needed refuses something by definition, so refusals
        # are compared too, not just the easy cases.
        assert (None in predicted) == (size < needed)
