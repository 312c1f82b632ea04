"""The pool report on real databases: sessions made through the service in fake time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.clock import FakeClock
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import InvalidRequest
from veil.domain.pool_report import PoolReport, PoolStatus
from veil.domain.session import Session
from veil.domain.session_params import Profile, parse_create, parse_update
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.service.pool_report import all_pool_reports, pool_report

HOUR = 3600
DAY = 24 * HOUR


async def new_pool(
    ctx: ServiceContext, size: int, *, owner: Account | None = None, country: str = "US"
) -> tuple[Account, list[str]]:
    account = owner or await accounts.create_account(ctx, name="Acme")
    added = [pool_number(country) for _ in range(size)]
    await numbers.add_numbers(ctx, account, added)
    return account, added


async def session(
    ctx: ServiceContext, principal: Account, first: str, second: str, **extra: Any
) -> Session:
    body = parse_create({"first_party": first, "second_party": second, **extra}, Profile.CURRENT)
    return await sessions.create_session(ctx, principal, body)


def test_an_agent_in_three_sessions_needs_three_numbers(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> list[list[PoolReport]]:
        account, _ = await new_pool(ctx, 5)
        agent = party_number()
        for _ in range(3):
            await session(ctx, account, agent, party_number(), session_expiry=HOUR)
        clock.advance(60)
        live = await pool_report(ctx, account)
        clock.advance(HOUR)  # all three over: nothing live, the week remembers them
        return [live, await pool_report(ctx, account)]

    [live], [later] = run_scenario(service_database, scenario)
    assert live == PoolReport("", "US", 5, 3, 3, 3, 3)
    assert (live.plivo_rule_7d, live.headroom, live.status) == (5, 2, PoolStatus.OK)
    assert later == PoolReport("", "US", 5, 0, 0, 3, 3)


def test_sessions_over_before_the_window_are_left_out(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> list[PoolReport]:
        account, _ = await new_pool(ctx, 3)
        agent = party_number()
        for _ in range(3):
            await session(ctx, account, agent, party_number(), session_expiry=HOUR)
        deleted = await session(ctx, account, party_number(), party_number(), session_expiry=DAY)
        clock.advance(20 * HOUR)
        extend = parse_update({"session_expiry": DAY}, Profile.CURRENT)
        await sessions.update_session(ctx, account, deleted.uuid, extend)  # to 44 h
        clock.advance(HOUR)
        await sessions.expire_session(ctx, account, deleted.uuid)  # at 21 h: expiry moves
        clock.advance(7 * DAY + 9 * HOUR)  # the window starts at 30 h
        return await pool_report(ctx, account)

    [report] = run_scenario(service_database, scenario)
    assert report == PoolReport("", "US", 3, 0, 0, 0, 0)
    assert (report.plivo_rule_7d, report.headroom, report.status) == (0, 3, PoolStatus.OK)


def test_a_session_from_eight_days_ago_still_live_is_included(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> list[PoolReport]:
        account, _ = await new_pool(ctx, 2)
        agent = party_number()
        long = await session(ctx, account, agent, party_number(), session_expiry=DAY)
        extend = parse_update({"session_expiry": DAY}, Profile.CURRENT)
        for _ in range(10):  # kept alive for 200 h
            clock.advance(20 * HOUR)
            await sessions.update_session(ctx, account, long.uuid, extend)
        await session(ctx, account, agent, party_number())
        return await pool_report(ctx, account)

    [report] = run_scenario(service_database, scenario)
    assert report == PoolReport("", "US", 2, 2, 2, 2, 2)
    assert (report.plivo_rule_7d, report.headroom, report.status) == (3, 0, PoolStatus.TIGHT)


def test_cooloff_holds_a_number_into_the_window(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> list[PoolReport]:
        # The window will start 90 min from now.
        account, _ = await new_pool(ctx, 3)
        cooled, plain = party_number(), party_number()
        # Both expire 30 min before the window; only the cool-off reaches into it.
        cooloff = {"session_expiry": HOUR, "virtual_number_cooloff_period": HOUR}
        await session(ctx, account, cooled, party_number(), **cooloff)
        await session(ctx, account, plain, party_number(), session_expiry=HOUR)
        clock.advance(100 * 60)  # 10 min into the window
        await session(ctx, account, cooled, party_number(), session_expiry=HOUR)
        await session(ctx, account, plain, party_number(), session_expiry=HOUR)
        clock.advance(7 * DAY - 10 * 60)
        return await pool_report(ctx, account)

    [report] = run_scenario(service_database, scenario)
    assert report == PoolReport("", "US", 3, 0, 0, 2, 2)
    assert (report.plivo_rule_7d, report.headroom, report.status) == (3, 1, PoolStatus.OK)


def test_pools_by_subaccount_and_country(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> dict[str, Any]:
        main, _ = await new_pool(ctx, 2)
        await new_pool(ctx, 1, owner=main, country="DE")
        sub = await accounts.create_account(ctx, name="EU", parent_auth_id=main.auth_id)
        await numbers.add_numbers(ctx, main, [pool_number(), pool_number()], subaccount=sub.auth_id)
        stranger, _ = await new_pool(ctx, 1)

        agent = party_number()
        await session(ctx, main, agent, party_number())
        await session(ctx, main, agent, party_number())
        await session(ctx, main, party_number("DE"), party_number("DE"))
        await session(ctx, sub, party_number(), party_number())
        await session(ctx, stranger, party_number(), party_number())
        with pytest.raises(InvalidRequest, match=messages.SUBACCOUNT_NOT_FOUND):
            await pool_report(ctx, sub, subaccount=main.auth_id)  # not its parent's pools
        everyone = await all_pool_reports(ctx)
        return {
            "sub": sub.auth_id,
            "main": await pool_report(ctx, main),
            "one": await pool_report(ctx, main, subaccount=sub.auth_id),
            "own": await pool_report(ctx, sub),
            "all": [r for auth_id, r in everyone if auth_id == main.auth_id],
            "stranger": [r for auth_id, r in everyone if auth_id == stranger.auth_id],
        }

    found = run_scenario(service_database, scenario)
    scoped = PoolReport(found["sub"], "US", 2, 1, 1, 1, 1)
    assert found["main"] == [
        PoolReport("", "DE", 1, 1, 1, 1, 1),
        PoolReport("", "US", 2, 2, 2, 2, 2),
        scoped,
    ]
    assert found["one"] == found["own"] == [scoped]
    assert found["all"] == found["main"]
    assert found["stranger"] == [PoolReport("", "US", 1, 1, 1, 1, 1)]


def test_status_follows_the_pool_size(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> list[PoolReport]:
        account, _ = await new_pool(ctx, 3)
        agent = party_number()
        used = [(await session(ctx, account, agent, party_number())).virtual_number]
        used += [(await session(ctx, account, agent, party_number())).virtual_number]
        used += [(await session(ctx, account, agent, party_number())).virtual_number]
        tight = await pool_report(ctx, account)
        [spare] = await numbers.add_numbers(ctx, account, [pool_number()])
        ok = await pool_report(ctx, account)
        # Reserved numbers leave the pool; the traffic they carried still counts.
        await numbers.update_number(ctx, account, spare.e164, reserved=True)
        await numbers.update_number(ctx, account, used[0], reserved=True)
        return [*tight, *ok, *await pool_report(ctx, account)]

    tight, ok, short = run_scenario(service_database, scenario)
    assert tight == PoolReport("", "US", 3, 3, 3, 3, 3)
    assert (tight.headroom, tight.status) == (0, PoolStatus.TIGHT)
    assert ok == PoolReport("", "US", 4, 3, 3, 3, 3)
    assert (ok.headroom, ok.status) == (1, PoolStatus.OK)
    assert short == PoolReport("", "US", 2, 2, 2, 3, 3)
    assert (short.headroom, short.status) == (-1, PoolStatus.SHORT)
