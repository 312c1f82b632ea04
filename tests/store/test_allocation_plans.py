"""The allocator reads a pool's free numbers from that pool's own index, however many
numbers other pools hold ahead of it: no walk through them, no sort.

PostgreSQL keeps one generic plan per prepared statement (Veil asks for it in the
allocation's transaction), made without the account's id; SQLite plans each statement
with its values. Both plans are read here for a small pool behind a large one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.plans import allocation_statements, explain
from tests.servers import BACKENDS, database
from tests.service.conftest import run_scenario
from tests.utils import sessions_that_never_meet
from veil.clock import FakeClock
from veil.domain.accounts import Account
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers
from veil.service.context import ServiceContext

AHEAD = 5000  # numbers of the large pool, all with lower ids than the small pools'
SMALL = 20


async def _pools(ctx: ServiceContext) -> dict[str, Account]:
    """A large main account's pool, then a small main account's and a small subaccount
    pool of the large account: the owner of each small one."""
    large = await accounts.create_account(ctx, name="large")
    for block in range(0, AHEAD, 1000):
        await numbers.add_numbers(ctx, large, [f"+1415{3000000 + block + i}" for i in range(1000)])
    small = await accounts.create_account(ctx, name="small")
    await numbers.add_numbers(ctx, small, [f"+1415{5000000 + i}" for i in range(SMALL)])
    sub = await accounts.create_account(ctx, name="sub", parent_auth_id=large.auth_id)
    await numbers.add_numbers(
        ctx, large, [f"+1415{6000000 + i}" for i in range(SMALL)], subaccount=sub.auth_id
    )
    return {"small main": small, "small subaccount": sub}


async def _plan(ctx: ServiceContext, owner: Account, *, geomatch: bool) -> str:
    """The plan of the statement that chooses the number, as an allocation runs it."""
    body = {"first_party": "+16465550100", "second_party": "+16465550101", "geomatch": geomatch}
    request = parse_create(body, Profile.CURRENT)
    ran = await allocation_statements(ctx, owner, request)
    (chooses,) = [(s, p) for s, p in ran if "candidates" in str(s.statement)]
    return await explain(ctx.db, *chooses)


def _sorts(plan: str) -> list[str]:
    """What the plan sorts: SQLite's temporary B-trees, PostgreSQL's sort keys."""
    return re.findall(r"USE TEMP B-TREE.*|Sort Key: .*", plan)


# The one sort of an allocation: the few candidates, by rank (rank_numbers' order).
RANK_SORT = {
    "sqlite": "USE TEMP B-TREE FOR ORDER BY",
    "postgresql": "Sort Key: candidates.sticky DESC, candidates.load DESC, candidates.id",
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_small_pool_is_read_from_its_own_index(backend: str, tmp_path: Path) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> dict[str, str]:
        pools = await _pools(ctx)
        if not ctx.db.is_sqlite:
            async with ctx.db.read() as conn:
                await conn.execute(text("ANALYZE"))  # what autovacuum would have done
        plans = {}
        for name, owner in pools.items():
            for geomatch in (False, True):
                shape = f"{name}, {'US' if geomatch else 'any country'}"
                plans[shape] = await _plan(ctx, owner, geomatch=geomatch)
        return plans

    with database(backend, tmp_path) as url:
        plans = run_scenario(url, scenario)

    assert len(plans) == 4
    for shape, plan in plans.items():
        if backend == "sqlite":
            # Searched by the pool's columns, in id order: no scan of numbers.
            assert re.search(r"SEARCH numbers USING INDEX ix_numbers_\w+ \(", plan), (shape, plan)
            assert "SCAN numbers" not in plan, (shape, plan)
        else:
            assert re.search(r"Index Scan using ix_numbers_(main|sub)_\w*order", plan), (
                shape,
                plan,
            )
            removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
            assert max(removed, default=0) < SMALL, (shape, plan)
        assert _sorts(plan) == [RANK_SORT[backend]], (shape, plan)  # the pool's order unsorted


HOT = 1500  # sessions of parties who never meet, all on the pool's first number


@pytest.mark.parametrize("analyzed", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hot_numbers_load_is_read_from_its_index(
    backend: str, analyzed: bool, tmp_path: Path
) -> None:
    # The load reads at most LOAD_CLAIMS claims, last ending first, from
    # ix_number_claims_number_busy. PostgreSQL's generic plan fetched all of a hot
    # number's claims and sorted them (no statistics), or walked every number's claims
    # in time order (with them), until the allocation's planner settings.
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> tuple[str, bool]:
        account = await accounts.create_account(ctx, name="hot")
        await numbers.add_numbers(ctx, account, [f"+1415{7000000 + i}" for i in range(50)])
        await sessions_that_never_meet(ctx, account, HOT)
        jit = False
        if not ctx.db.is_sqlite:
            async with ctx.db.read() as conn:
                if analyzed:
                    await conn.execute(text("ANALYZE"))
                jit = bool((await conn.execute(text("SELECT pg_jit_available()"))).scalar())
        return await _plan(ctx, account, geomatch=False), jit

    with database(backend, tmp_path) as url:
        plan, jit = run_scenario(url, scenario)

    busy = "ix_number_claims_number_busy"
    if backend == "sqlite":
        assert re.search(rf"SEARCH number_claims USING (COVERING )?INDEX {busy}", plan), plan
    else:
        assert re.search(rf"Index (Only )?Scan Backward using {busy}", plan), plan
        assert "ix_number_claims_busy_until" not in plan, plan  # not every number's claims
        # The rank's sort is costed as "off" makes it (huge): no JIT compilation for it,
        # on a server that could compile (or this could not fail).
        assert jit and "JIT" not in plan, plan
    assert _sorts(plan) == [RANK_SORT[backend]], plan  # every other order from an index
