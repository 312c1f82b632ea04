"""A candidate's load, as the store sums it, counts at most LOAD_CLAIMS of the number's
claims: those that end last (veil.domain.allocator.overlap_load).

Parties who never meet all get the same number, the most loaded one; without the bound
an allocation read a claim for every session that number held."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.servers import BACKENDS, database
from tests.service.conftest import run_scenario
from tests.utils import sessions_that_never_meet
from veil.clock import FakeClock
from veil.domain.allocator import CANDIDATES, LOAD_CLAIMS, claim_keys, overlap_load
from veil.domain.session import holds_number_until
from veil.service import accounts, numbers
from veil.service.context import ServiceContext
from veil.store.sessions import FreeNumberQuery, free_numbers
from veil.store.tables import number_claims

SESSIONS = LOAD_CLAIMS // 2 + 20  # two claims each: more claims than the load counts
HOLD = 3600  # seconds the new session would hold its number


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_load_counts_the_claims_that_end_last(backend: str, tmp_path: Path) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> tuple[int, int, int]:
        account = await accounts.create_account(ctx, name="load")
        await numbers.add_numbers(ctx, account, [f"+1415555{i:04d}" for i in range(4)])
        # Expiries on both sides of the horizon.
        await sessions_that_never_meet(ctx, account, SESSIONS, expiry=600)
        now = clock.now()
        horizon = holds_number_until(now + timedelta(seconds=HOLD), 0)
        async with ctx.db.write() as conn:
            rows = await conn.execute(select(number_claims.c.number_id, number_claims.c.busy_until))
            held = [(n, until) for n, until in rows]
            found = await free_numbers(
                conn,
                FreeNumberQuery(
                    account_id=account.id,
                    subaccount_id=None,
                    country=None,
                    keys=claim_keys(["+16460000000", "+16470000000"], []),
                    now=now,
                    horizon=horizon,
                ),
                limit=CANDIDATES,
            )
        (number,) = {n for n, _ in held}  # every session on the same number
        ends = [math.floor(until.timestamp()) for _, until in held]
        whole_now, whole_horizon = math.floor(now.timestamp()), math.floor(horizon.timestamp())
        loads = {n.id: n.load for n in found}
        counted = overlap_load(ends, whole_now, whole_horizon)
        everything = overlap_load(ends, whole_now, whole_horizon, most=len(ends))
        return loads[number], counted, everything

    with database(backend, tmp_path) as url:
        load, counted, everything = run_scenario(url, scenario)
    assert load == counted
    assert counted < everything  # the bound is what this exercised
