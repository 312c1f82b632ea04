"""A session allocation racing a transaction that gives its number to an Infobip
configuration (PostgreSQL: the only backend whose writers run concurrently)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select, text

from tests.servers import database
from tests.service.conftest import run_scenario
from tests.service.test_sessions import create_body, new_account
from tests.utils import party_number
from veil.clock import FakeClock
from veil.service import infobip, sessions
from veil.service.context import ServiceContext
from veil.store import infobip as infobip_repo
from veil.store.tables import number_claims, numbers

WAIT_STEPS = 1000  # polls of 10 ms for the allocation to block on the number's row


async def _blocked_on_a_lock(ctx: ServiceContext) -> bool:
    async with ctx.db.read() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting.scalar())


def test_a_number_given_away_meanwhile_is_not_claimed(tmp_path: Path) -> None:
    # The allocation reads number 1 as free, and its claim then waits on the row the
    # Infobip transaction locked. Once that commits, the claim sees the new owner and
    # inserts nothing; the retry takes number 2. Number 1 ends with no session on it.
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, (first, second) = await new_account(ctx, pool=2)
        config = await infobip.create_config(
            ctx, account, {"name": "race", "callbackUrl": "http://127.0.0.1:9/cb"}
        )
        async with ctx.db.read() as conn:
            key = (
                await conn.execute(select(numbers.c.number_key).where(numbers.c.e164 == first))
            ).scalar_one()

        async with ctx.db.write() as conn:
            number = await infobip_repo.number_by_key(conn, key, lock=True)
            assert number is not None and number.masking_config_id is None
            await infobip_repo.link_number(conn, number.id, config.id)
            create = asyncio.create_task(
                sessions.create_session(ctx, account, create_body(party_number(), party_number()))
            )
            for _ in range(WAIT_STEPS):
                if await _blocked_on_a_lock(ctx) or create.done():
                    break
                await asyncio.sleep(0.01)
            assert not create.done() and await _blocked_on_a_lock(ctx)
        session = await create

        assert session.virtual_number == second
        async with ctx.db.read() as conn:
            held = await conn.execute(
                select(number_claims.c.key).where(number_claims.c.number_id == number.id)
            )
            assert held.all() == []

    with database("postgresql", tmp_path) as url:
        run_scenario(url, scenario)
