"""Session lifecycle and allocation rules, driven through the service layer in fake time."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.clock import FakeClock
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import Conflict, InvalidRequest
from veil.domain.list_filters import parse_list_query
from veil.domain.session import Status
from veil.domain.session_params import Profile, parse_create, parse_update
from veil.service import accounts, numbers, sessions, sweeper
from veil.service.context import ServiceContext
from veil.store.tables import number_claims, outbox


async def new_account(ctx: ServiceContext, pool: int = 1) -> tuple[Account, list[str]]:
    account = await accounts.create_account(ctx, name="Acme")
    added = [pool_number() for _ in range(pool)]
    await numbers.add_numbers(ctx, account, added)
    return account, added


def create_body(first: str, second: str, **extra: Any) -> Any:
    return parse_create({"first_party": first, "second_party": second, **extra}, Profile.CURRENT)


async def outbox_rows(ctx: ServiceContext, account: Account) -> list[Any]:
    async with ctx.db.read() as conn:
        result = await conn.execute(
            select(outbox).where(outbox.c.account_id == account.id).order_by(outbox.c.id)
        )
        return list(result.all())


def test_reads_expired_the_moment_expiry_passes(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, _ = await new_account(ctx)
        created = await sessions.create_session(
            ctx, account, create_body(party_number(), party_number(), session_expiry=120)
        )
        clock.advance(119)
        assert (await sessions.get_session(ctx, account, created.uuid)).status_at(
            clock.now()
        ) is Status.ACTIVE
        clock.advance(1)  # exactly at expiry_time
        stored = await sessions.get_session(ctx, account, created.uuid)
        assert stored.status is Status.ACTIVE  # nothing has swept it yet...
        assert stored.status_at(clock.now()) is Status.EXPIRED  # ...but it reads expired

        # The list filters agree with what readers see, before any sweep.
        expired = parse_list_query([("status", "expired")], clock.now())
        active = parse_list_query([("status", "active")], clock.now())
        assert [s.uuid for s in (await sessions.list_sessions(ctx, account, expired))[0]] == [
            created.uuid
        ]
        assert (await sessions.list_sessions(ctx, account, active))[1] == 0

    run_scenario(service_database, scenario)


def test_sweeper_marks_expired_and_writes_one_timeout_event(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, [number] = await new_account(ctx)
        first, second = party_number(), party_number()
        with_callback = await sessions.create_session(
            ctx,
            account,
            create_body(
                first,
                second,
                session_expiry=60,
                callback_url="https://example.com/cb",
                callback_method="GET",
            ),
        )
        await sessions.create_session(
            ctx, account, create_body(party_number(), party_number(), session_expiry=60)
        )  # no callback_url: no event
        clock.advance(61)
        assert await sweeper.sweep_all(ctx) >= 2
        assert await sweeper.sweep_all(ctx) == 0  # idempotent

        stored = await sessions.get_session(ctx, account, with_callback.uuid)
        assert stored.status is Status.EXPIRED
        [row] = await outbox_rows(ctx, account)
        assert (row.event, row.url, row.method, row.sequence, row.status) == (
            "SessionTimeout",
            "https://example.com/cb",
            "GET",
            1,
            "pending",
        )
        assert orjson.loads(row.payload) == {
            "EventName": "SessionTimeout",
            "EventTimestamp": with_callback.expiry_time.strftime("%Y-%m-%d %H:%M:%S"),
            "SessionUUID": with_callback.uuid,
            "VirtualNumber": number.lstrip("+"),
            "SequenceNumber": "1",
            "FirstParty": first.lstrip("+"),
            "SecondParty": second.lstrip("+"),
        }

    run_scenario(service_database, scenario)


def test_expired_session_frees_its_number_without_a_sweep(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, [number] = await new_account(ctx)
        agent = party_number()
        await sessions.create_session(
            ctx, account, create_body(agent, party_number(), session_expiry=60)
        )
        with pytest.raises(InvalidRequest, match=messages.POOL_EXHAUSTED):
            await sessions.create_session(ctx, account, create_body(agent, party_number()))
        clock.advance(60)
        again = await sessions.create_session(ctx, account, create_body(agent, party_number()))
        assert again.virtual_number == number

    run_scenario(service_database, scenario)


@pytest.mark.parametrize("ended_by", ["expiry", "delete"])
def test_cooloff_keeps_the_number_from_both_parties(service_database: str, ended_by: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, [number] = await new_account(ctx)
        agent, customer = party_number(), party_number()
        first = await sessions.create_session(
            ctx,
            account,
            create_body(agent, customer, session_expiry=300, virtual_number_cooloff_period=600),
        )
        if ended_by == "delete":
            clock.advance(100)
            await sessions.expire_session(ctx, account, first.uuid)
        else:
            clock.advance(300)
        for party in (agent, customer):
            clock.advance(0)
            with pytest.raises(InvalidRequest, match=messages.POOL_EXHAUSTED):
                await sessions.create_session(ctx, account, create_body(party, party_number()))
        # Someone else entirely may use the number during the cool-off.
        other = await sessions.create_session(
            ctx, account, create_body(party_number(), party_number())
        )
        assert other.virtual_number == number
        clock.advance(600)
        later = await sessions.create_session(ctx, account, create_body(agent, party_number()))
        assert later.virtual_number == number

    run_scenario(service_database, scenario)


def test_updating_expiry_moves_the_claims(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, _ = await new_account(ctx)
        agent = party_number()
        created = await sessions.create_session(
            ctx, account, create_body(agent, party_number(), session_expiry=60)
        )
        clock.advance(30)
        updated = await sessions.update_session(
            ctx, account, created.uuid, parse_update({"session_expiry": 600}, Profile.CURRENT)
        )
        assert (updated.expiry_time - clock.now()).total_seconds() == 600
        assert updated.duration == 630
        clock.advance(100)  # past the old expiry, inside the new one
        with pytest.raises(InvalidRequest, match=messages.POOL_EXHAUSTED):
            await sessions.create_session(ctx, account, create_body(agent, party_number()))
        async with ctx.db.read() as conn:
            busy = (
                (
                    await conn.execute(
                        select(number_claims.c.busy_until).where(
                            number_claims.c.session_id == created.id
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert busy == [updated.expiry_time, updated.expiry_time]

    run_scenario(service_database, scenario)


def test_single_party_fill_in_respects_the_uniqueness_rule(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, _ = await new_account(ctx)
        agent, customer = party_number(), party_number()
        await sessions.create_session(ctx, account, create_body(agent, customer))
        lone = await sessions.create_session(
            ctx,
            account,
            parse_create(
                {"first_party": party_number(), "create_session_with_single_party": True},
                Profile.CURRENT,
            ),
        )
        # Only one number: the agent is already on it with the customer.
        assert (
            lone.virtual_number
            == (await sessions.get_session(ctx, account, lone.uuid)).virtual_number
        )
        with pytest.raises(InvalidRequest, match=messages.party_busy("second_party")):
            await sessions.update_session(
                ctx, account, lone.uuid, parse_update({"second_party": agent}, Profile.CURRENT)
            )
        filled = await sessions.update_session(
            ctx, account, lone.uuid, parse_update({"second_party": party_number()}, Profile.CURRENT)
        )
        assert filled.second_party

    run_scenario(service_database, scenario)


def test_a_number_in_use_cannot_be_removed(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account, [number] = await new_account(ctx)
        created = await sessions.create_session(
            ctx,
            account,
            create_body(party_number(), party_number(), virtual_number_cooloff_period=3600),
        )
        with pytest.raises(Conflict, match=messages.NUMBER_IN_USE):
            await numbers.remove_number(ctx, account, number)
        await sessions.expire_session(ctx, account, created.uuid)
        # Expired (even while cooling off): the number may leave the pool.
        await numbers.remove_number(ctx, account, number)
        kept = await sessions.get_session(ctx, account, created.uuid)
        assert kept.virtual_number == number and kept.number_id is None

    run_scenario(service_database, scenario)
