"""The allocator reads a pool's free numbers from that pool's own index, however many
numbers other pools hold ahead of it: no walk through them, no sort.

PostgreSQL keeps one generic plan per prepared statement (Veil asks for it in the
allocation's transaction), made without the account's id; SQLite plans each statement
with its values. Both plans are read here for a small pool behind a large one.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.plans import driver_form
from tests.servers import BACKENDS, database
from tests.utils import sessions_that_never_meet
from veil.clock import FakeClock
from veil.domain.allocator import CANDIDATES, party_key
from veil.service import accounts, numbers
from veil.service.context import ServiceContext
from veil.store.db import Database
from veil.store.sessions import ALLOCATION_PLANNER, FreeNumberQuery, free_numbers_statement

AHEAD = 5000  # numbers of the large pool, all with lower ids than the small pools'
SMALL = 20


async def _pools(ctx: ServiceContext) -> dict[str, tuple[int, int | None]]:
    """A large main account's pool, then a small main account's and a small subaccount
    pool of the large account: (account_id, subaccount_id) of each small one."""
    large = await accounts.create_account(ctx, name="large")
    for block in range(0, AHEAD, 1000):
        await numbers.add_numbers(ctx, large, [f"+1415{3000000 + block + i}" for i in range(1000)])
    small = await accounts.create_account(ctx, name="small")
    await numbers.add_numbers(ctx, small, [f"+1415{5000000 + i}" for i in range(SMALL)])
    sub = await accounts.create_account(ctx, name="sub", parent_auth_id=large.auth_id)
    await numbers.add_numbers(
        ctx, large, [f"+1415{6000000 + i}" for i in range(SMALL)], subaccount=sub.auth_id
    )
    return {"small main": (small.id, None), "small subaccount": (large.id, sub.id)}


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    assert "'" not in str(value)
    return f"'{value}'"


async def _plan(db: Database, query: FreeNumberQuery) -> str:
    statement, params = free_numbers_statement(query, limit=CANDIDATES, pair="p|q")
    async with db.read() as conn:
        sql, positional = driver_form(statement, conn.dialect, params)
        raw: Any = getattr(conn, "_conn", conn)  # SQLite's inline Connection, or asyncpg's
        if db.is_sqlite:
            rows = raw.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, positional)
            return "\n".join(str(row[-1]) for row in rows)
        for name, value in ALLOCATION_PLANNER.items():  # as the allocation plans
            await conn.execute(text(f"SET {name} = {value}"))
        await raw.exec_driver_sql("PREPARE candidates AS " + sql)
        args = ", ".join(_literal(v) for v in positional)
        rows = await raw.exec_driver_sql(f"EXPLAIN (ANALYZE) EXECUTE candidates({args})")
        await raw.exec_driver_sql("DEALLOCATE candidates")
        return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_small_pool_is_read_from_its_own_index(backend: str, tmp_path: Path) -> None:
    async def main(url: str) -> dict[str, str]:
        db = Database(url)
        ctx = ServiceContext(db=db, clock=FakeClock())
        try:
            pools = await _pools(ctx)
            if not db.is_sqlite:
                async with db.read() as conn:
                    await conn.execute(text("ANALYZE"))  # what autovacuum would have done
            now = ctx.clock.now()
            plans = {}
            for name, (account_id, subaccount_id) in pools.items():
                for country in (None, "US"):
                    query = FreeNumberQuery(
                        account_id=account_id,
                        subaccount_id=subaccount_id,
                        country=country,
                        keys=[party_key("+16465550100"), party_key("+16465550101")],
                        now=now,
                        horizon=now + timedelta(hours=1),
                    )
                    plans[f"{name}, {country or 'any country'}"] = await _plan(db, query)
            return plans
        finally:
            await db.dispose()

    with database(backend, tmp_path) as url:
        plans = asyncio.run(main(url))

    assert len(plans) == 4
    for shape, plan in plans.items():
        if backend == "sqlite":
            # Searched by the pool's columns, in id order: no scan of numbers, no sort.
            assert re.search(r"SEARCH numbers USING INDEX ix_numbers_\w+ \(", plan), (shape, plan)
            assert "SCAN numbers" not in plan and "TEMP B-TREE" not in plan, (shape, plan)
        else:
            assert re.search(r"Index Scan using ix_numbers_(main|sub)_\w*order", plan), (
                shape,
                plan,
            )
            removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
            assert max(removed, default=0) < SMALL, (shape, plan)


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
    async def main(url: str) -> str:
        db = Database(url)
        clock = FakeClock()
        ctx = ServiceContext(db=db, clock=clock)
        try:
            account = await accounts.create_account(ctx, name="hot")
            await numbers.add_numbers(ctx, account, [f"+1415{7000000 + i}" for i in range(50)])
            await sessions_that_never_meet(ctx, account, HOT)
            if analyzed and not db.is_sqlite:
                async with db.read() as conn:
                    await conn.execute(text("ANALYZE"))
            now = clock.now()
            query = FreeNumberQuery(
                account_id=account.id,
                subaccount_id=None,
                country=None,
                keys=[party_key("+16465550100"), party_key("+16465550101")],
                now=now,
                horizon=now + timedelta(hours=1),
            )
            return await _plan(db, query)
        finally:
            await db.dispose()

    with database(backend, tmp_path) as url:
        plan = asyncio.run(main(url))

    busy = "ix_number_claims_number_busy"
    if backend == "sqlite":
        assert re.search(rf"SEARCH number_claims USING (COVERING )?INDEX {busy}", plan), plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert re.search(rf"Index (Only )?Scan Backward using {busy}", plan), plan
        assert "Sort" not in plan, plan  # every order from an index
        assert "ix_number_claims_busy_until" not in plan, plan  # not every number's claims
