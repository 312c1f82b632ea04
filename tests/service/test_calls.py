"""Calls through masking sessions (veil/service/calls.py), on a real database in fake
time: routing, the ``in-progress`` status, interactions and statistics, and the leg
events written to the outbox.

The call plane's part is played by hand, the way ``veil.calls.b2bua`` drives the
service: route, ``Interaction`` with both leg UUIDs, ``call_started``, ``leg_event``
for ringing and answer, then ``call_ended``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.clock import FakeClock
from veil.domain.accounts import Account
from veil.domain.calls import (
    NO_ACTIVE_SESSION,
    NOT_A_VIRTUAL_NUMBER,
    UNKNOWN_CALLER,
    AskPin,
    Bridge,
    HangupCause,
    LegEvent,
    LegStatus,
    Role,
)
from veil.domain.ids import is_uuid, new_uuid
from veil.domain.list_filters import parse_list_query
from veil.domain.pin_entry import PinStatus
from veil.domain.session import Session, Status
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers, sessions, sweeper
from veil.service.calls import (
    Interaction,
    call_ended,
    call_started,
    leg_event,
    match_pin,
    pin_status,
    play_failed,
    route_call,
)
from veil.service.context import ServiceContext
from veil.store.tables import outbox

CALLBACK = "https://example.com/events"


@dataclass
class Setup:
    account: Account
    number: str
    first: str
    second: str
    session: Session


async def setup(ctx: ServiceContext, **extra: Any) -> Setup:
    """A new account with one pool number and a session on it."""
    account = await accounts.create_account(ctx, name="Acme")
    number = pool_number()
    await numbers.add_numbers(ctx, account, [number])
    first, second = party_number(), party_number()
    request = parse_create({"first_party": first, "second_party": second, **extra}, Profile.CURRENT)
    session = await sessions.create_session(ctx, account, request)
    assert session.virtual_number == number
    return Setup(account, number, first, second, session)


async def bridge(ctx: ServiceContext, number: str, caller: str) -> Bridge:
    decision = await route_call(ctx, number, caller)
    assert isinstance(decision, Bridge), decision
    return decision


async def start(ctx: ServiceContext, clock: FakeClock, number: str, caller: str) -> Interaction:
    """Route a call from ``caller`` and start it, as the B2BUA does."""
    decision = await bridge(ctx, number, caller)
    interaction = Interaction(decision.session, decision.caller_role, clock.now())
    interaction.leg_uuids[decision.caller_role] = new_uuid()
    interaction.leg_uuids[decision.caller_role.other] = new_uuid()
    await call_started(ctx, interaction)
    return interaction


async def answer(ctx: ServiceContext, clock: FakeClock, interaction: Interaction) -> None:
    """The callee rings, then answers: both legs are up."""
    caller, callee = interaction.caller_role, interaction.caller_role.other
    await leg_event(ctx, interaction, callee, LegEvent.RINGING)
    clock.advance(3)
    interaction.answer_time = clock.now()
    interaction.statuses[caller] = LegStatus.COMPLETED
    interaction.statuses[callee] = LegStatus.COMPLETED
    await leg_event(ctx, interaction, callee, LegEvent.ANSWER)
    await leg_event(ctx, interaction, caller, LegEvent.ANSWER)


async def answered_call(
    ctx: ServiceContext,
    clock: FakeClock,
    number: str,
    caller: str,
    talk: float,
    hung_up_by: Role | None = None,
) -> Interaction:
    interaction = await start(ctx, clock, number, caller)
    await answer(ctx, clock, interaction)
    clock.advance(talk)
    interaction.hung_up_by = hung_up_by
    await call_ended(ctx, interaction)
    return interaction


async def read(ctx: ServiceContext, setup: Setup) -> Session:
    return await sessions.get_session(ctx, setup.account, setup.session.uuid)


async def events(ctx: ServiceContext, session: Session) -> list[Any]:
    async with ctx.db.read() as conn:
        result = await conn.execute(
            select(outbox).where(outbox.c.session_id == session.id).order_by(outbox.c.id)
        )
        return list(result.all())


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# --- Routing ----------------------------------------------------------------------------------


def test_route_call_bridges_either_party(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        decision = await route_call(ctx, s.number, s.first)
        assert isinstance(decision, Bridge)
        assert (decision.caller_role, decision.caller, decision.callee) == (
            Role.FIRST,
            s.first,
            s.second,
        )
        assert decision.session.uuid == s.session.uuid
        assert decision.session.id == s.session.id

        decision = await route_call(ctx, s.number, s.second)
        assert isinstance(decision, Bridge)
        assert (decision.caller_role, decision.caller, decision.callee) == (
            Role.SECOND,
            s.second,
            s.first,
        )

    run_scenario(service_database, scenario)


def test_route_call_to_a_number_not_in_the_pool(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        assert await route_call(ctx, pool_number(), s.first) == NOT_A_VIRTUAL_NUMBER
        assert await route_call(ctx, s.first, s.second) == NOT_A_VIRTUAL_NUMBER

    run_scenario(service_database, scenario)


def test_route_call_to_an_idle_pool_number(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        account = await accounts.create_account(ctx, name="Acme")
        number = pool_number()
        await numbers.add_numbers(ctx, account, [number])
        assert await route_call(ctx, number, party_number()) == NO_ACTIVE_SESSION

    run_scenario(service_database, scenario)


def test_route_call_from_a_stranger(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        assert await route_call(ctx, s.number, party_number()) == UNKNOWN_CALLER
        assert await route_call(ctx, s.number, None) == UNKNOWN_CALLER

    run_scenario(service_database, scenario)


@pytest.mark.parametrize("ended_by", ["time", "time+sweep", "delete"])
def test_route_call_after_the_session_expired(service_database: str, ended_by: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, session_expiry=120)
        clock.advance(119)
        assert isinstance(await route_call(ctx, s.number, s.first), Bridge)
        if ended_by == "delete":
            await sessions.expire_session(ctx, s.account, s.session.uuid)
        else:
            clock.advance(1)  # exactly at expiry_time
            if ended_by == "time+sweep":
                assert await sweeper.sweep_all(ctx) >= 1
        for caller in (s.first, s.second):
            assert await route_call(ctx, s.number, caller) == NO_ACTIVE_SESSION

    run_scenario(service_database, scenario)


def test_route_call_finds_the_callers_session_among_several(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        other_first, other_second = party_number(), party_number()
        other = await sessions.create_session(
            ctx,
            s.account,
            parse_create(
                {"first_party": other_first, "second_party": other_second}, Profile.CURRENT
            ),
        )
        assert other.virtual_number == s.number  # one number, two sessions
        decision = await bridge(ctx, s.number, other_second)
        assert decision.session.uuid == other.uuid
        assert decision.callee == other_first
        decision = await bridge(ctx, s.number, s.second)
        assert decision.session.uuid == s.session.uuid
        assert decision.callee == s.first

    run_scenario(service_database, scenario)


# --- Status -----------------------------------------------------------------------------------


def test_a_call_puts_the_session_in_progress_until_it_ends(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        assert (await read(ctx, s)).status is Status.ACTIVE
        interaction = await start(ctx, clock, s.number, s.first)
        during = await read(ctx, s)
        assert during.status is Status.IN_PROGRESS
        assert during.status_at(clock.now()) is Status.IN_PROGRESS
        # A session in progress still routes (another call, or the other party).
        assert isinstance(await route_call(ctx, s.number, s.second), Bridge)
        await answer(ctx, clock, interaction)
        assert (await read(ctx, s)).status is Status.IN_PROGRESS
        clock.advance(30)
        await call_ended(ctx, interaction)
        after = await read(ctx, s)
        assert after.status is Status.ACTIVE
        assert after.status_at(clock.now()) is Status.ACTIVE

    run_scenario(service_database, scenario)


def test_overlapping_calls_keep_the_session_in_progress(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        one = await start(ctx, clock, s.number, s.first)
        clock.advance(5)
        two = await start(ctx, clock, s.number, s.second)
        assert (await read(ctx, s)).status is Status.IN_PROGRESS
        clock.advance(5)
        await call_ended(ctx, one)
        assert (await read(ctx, s)).status is Status.IN_PROGRESS  # the second is still up
        clock.advance(5)
        await call_ended(ctx, two)
        assert (await read(ctx, s)).status is Status.ACTIVE
        # And again: the count of calls up went back to zero, not below.
        three = await start(ctx, clock, s.number, s.first)
        assert (await read(ctx, s)).status is Status.IN_PROGRESS
        await call_ended(ctx, three)
        assert (await read(ctx, s)).status is Status.ACTIVE

    run_scenario(service_database, scenario)


@pytest.mark.parametrize("ended_by", ["time", "time+sweep", "delete"])
def test_a_call_ending_after_expiry_leaves_the_session_expired(
    service_database: str, ended_by: str
) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, session_expiry=120)
        interaction = await start(ctx, clock, s.number, s.first)
        await answer(ctx, clock, interaction)
        if ended_by == "delete":
            clock.advance(10)
            await sessions.expire_session(ctx, s.account, s.session.uuid)
        else:
            clock.advance(150)
            if ended_by == "time+sweep":
                assert await sweeper.sweep_all(ctx) >= 1
        clock.advance(10)
        await call_ended(ctx, interaction)
        after = await read(ctx, s)
        assert after.status_at(clock.now()) is Status.EXPIRED
        if ended_by != "time":
            assert after.status is Status.EXPIRED  # stored, not only seen
        assert after.total_call_count == 2  # the call is still counted
        assert len(after.interactions) == 1
        await sweeper.sweep_all(ctx)
        assert (await read(ctx, s)).status is Status.EXPIRED
        assert await route_call(ctx, s.number, s.first) == NO_ACTIVE_SESSION

    run_scenario(service_database, scenario)


# --- Interactions and statistics --------------------------------------------------------------


def test_call_ended_records_the_interaction(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        before = await read(ctx, s)
        assert (before.total_call_count, before.total_call_billed_duration) == (0, 0)
        assert before.last_interaction_time is None
        assert before.interactions == ()

        began = clock.now()
        interaction = await answered_call(ctx, clock, s.number, s.second, talk=61.25)
        assert interaction.end_time == clock.now()
        after = await read(ctx, s)
        assert after.total_call_count == 2  # two legs
        assert after.total_call_billed_duration == 2 * 120  # 61.25 s: two minutes per leg
        assert after.last_interaction_time == clock.now()
        [record] = after.interactions
        assert record.uuid == interaction.uuid
        assert is_uuid(record.uuid)
        assert record.start_time == began
        assert record.end_time == clock.now()
        assert record.first_party_call_uuid == interaction.leg_uuids[Role.FIRST]
        assert record.second_party_call_uuid == interaction.leg_uuids[Role.SECOND]
        assert record.first_party_call_uuid != record.second_party_call_uuid
        assert (record.first_party_status, record.second_party_status) == (
            "completed",
            "completed",
        )
        assert record.duration == 61  # connected seconds, from the answer
        assert record.billed_duration == 240
        assert record.call_count == 2

    run_scenario(service_database, scenario)


def test_statistics_add_up_over_calls(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        one = await answered_call(ctx, clock, s.number, s.first, talk=60)
        first_end = clock.now()
        clock.advance(100)
        two = await answered_call(ctx, clock, s.number, s.second, talk=0.2)
        after = await read(ctx, s)
        assert after.total_call_count == 4
        assert after.total_call_billed_duration == 2 * 60 + 2 * 60
        assert after.last_interaction_time == clock.now()
        assert [i.uuid for i in after.interactions] == [one.uuid, two.uuid]  # oldest first
        assert [i.end_time for i in after.interactions] == [first_end, clock.now()]
        assert [i.duration for i in after.interactions] == [60, 0]
        assert [i.billed_duration for i in after.interactions] == [120, 120]

    run_scenario(service_database, scenario)


def test_a_busy_callee_is_counted_but_not_billed(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        interaction = await start(ctx, clock, s.number, s.first)
        clock.advance(2)
        interaction.statuses[Role.SECOND] = LegStatus.BUSY
        interaction.statuses[Role.FIRST] = LegStatus.FAILED
        interaction.hangup_cause = HangupCause.BUSY
        await call_ended(ctx, interaction)
        after = await read(ctx, s)
        assert after.status is Status.ACTIVE
        assert (after.total_call_count, after.total_call_billed_duration) == (2, 0)
        assert after.last_interaction_time == clock.now()
        [record] = after.interactions
        assert (record.first_party_status, record.second_party_status) == ("failed", "busy")
        assert (record.duration, record.billed_duration, record.call_count) == (0, 0, 2)

    run_scenario(service_database, scenario)


def test_an_undialled_leg_is_not_a_call(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, callback_url=CALLBACK)
        # The caller hung up before the callee was dialled: one leg only.
        decision = await bridge(ctx, s.number, s.second)
        interaction = Interaction(decision.session, decision.caller_role, clock.now())
        interaction.leg_uuids[Role.SECOND] = new_uuid()
        await call_started(ctx, interaction)
        interaction.statuses[Role.SECOND] = LegStatus.CANCELED
        interaction.hangup_cause = HangupCause.CANCELED
        await call_ended(ctx, interaction)
        after = await read(ctx, s)
        assert (after.total_call_count, after.total_call_billed_duration) == (1, 0)
        [record] = after.interactions
        assert (record.first_party_status, record.second_party_status) == (
            "not-dialed",
            "canceled",
        )
        assert record.first_party_call_uuid is None
        assert record.second_party_call_uuid == interaction.leg_uuids[Role.SECOND]
        ended = [row.event for row in await events(ctx, s.session)][2:]
        assert ended == ["SessionSecondPartyFailed", "SessionPartiesHangup"]

    run_scenario(service_database, scenario)


def test_list_sessions_attaches_interactions(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        quiet = await sessions.create_session(
            ctx,
            s.account,
            parse_create(
                {"first_party": party_number(), "second_party": party_number()},
                Profile.CURRENT,
            ),
        )
        interaction = await answered_call(ctx, clock, s.number, s.first, talk=30)
        found, total = await sessions.list_sessions(
            ctx, s.account, parse_list_query([], clock.now())
        )
        assert total == 2
        by_uuid = {session.uuid: session for session in found}
        [record] = by_uuid[s.session.uuid].interactions
        assert record.uuid == interaction.uuid
        assert (record.duration, record.billed_duration) == (30, 120)
        assert by_uuid[s.session.uuid].total_call_count == 2
        assert by_uuid[quiet.uuid].interactions == ()
        assert by_uuid[quiet.uuid].total_call_count == 0

    run_scenario(service_database, scenario)


# --- Events -----------------------------------------------------------------------------------


def test_events_of_an_answered_call(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, callback_url=CALLBACK, callback_method="GET")
        started = clock.now()
        interaction = await start(ctx, clock, s.number, s.second)
        clock.advance(2)
        await answer(ctx, clock, interaction)  # rings at +2, answered at +5
        answered = clock.now()
        clock.advance(61.25)
        interaction.hung_up_by = Role.SECOND  # the caller hangs up
        await call_ended(ctx, interaction)
        ended = clock.now()

        rows = await events(ctx, s.session)
        assert [row.event for row in rows] == [
            "SessionSecondPartyInitiated",
            "SessionFirstPartyInitiated",
            "SessionFirstPartyRinging",
            "SessionFirstPartyAnswer",
            "SessionSecondPartyAnswer",
            "SessionSecondPartyHangup",
            "SessionSecondPartyComplete",
            "SessionFirstPartyComplete",
            "SessionPartiesHangup",
        ]
        assert [row.sequence for row in rows] == list(range(1, 10))
        assert {(row.url, row.method, row.status) for row in rows} == {(CALLBACK, "GET", "pending")}
        assert {row.account_id for row in rows} == {s.account.id}
        payloads = [orjson.loads(row.payload) for row in rows]
        legs = {
            "SessionSecondParty": interaction.leg_uuids[Role.SECOND],
            "SessionFirstParty": interaction.leg_uuids[Role.FIRST],
        }
        for row, payload in zip(rows, payloads, strict=True):
            assert payload["EventName"] == row.event
            assert payload["SequenceNumber"] == str(row.sequence)
            assert payload["SessionUUID"] == s.session.uuid
            assert payload["VirtualNumber"] == s.number.lstrip("+")
            # The caller called the callee, whichever leg the event is about.
            assert payload["From"] == s.second.lstrip("+")
            assert payload["To"] == s.first.lstrip("+")
            assert payload["FirstParty"] == s.first.lstrip("+")
            assert payload["SecondParty"] == s.second.lstrip("+")
            assert all(isinstance(value, str) for value in payload.values())
            party = next((p for p in legs if row.event.startswith(p)), None)
            expected_uuid = legs[party] if party else interaction.uuid
            assert payload["CallUUID"] == expected_uuid

        times = [payload["EventTimestamp"] for payload in payloads]
        assert times[:2] == [stamp(started)] * 2
        assert times[2] == stamp(started + timedelta(seconds=2))
        assert times[3:5] == [stamp(answered)] * 2
        assert times[5:] == [stamp(ended)] * 4

        for payload in payloads[:5]:
            assert "Duration" not in payload and "PlivoHangupCause" not in payload
        for payload in payloads[5:]:
            assert payload["Duration"] == "61"
            assert payload["BilledDuration"] == "120"  # one leg's
            assert payload["PlivoHangupCause"] == "normal_hangup"
            assert payload["PlivoHangupCauseCode"] == "4000"

    run_scenario(service_database, scenario)


def test_both_answered_legs_hang_up_when_no_party_did(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, callback_url=CALLBACK)
        interaction = await start(ctx, clock, s.number, s.first)
        await answer(ctx, clock, interaction)
        clock.advance(3600)
        interaction.hangup_cause = HangupCause.TIME_LIMIT  # Veil ended it
        await call_ended(ctx, interaction)
        rows = await events(ctx, s.session)
        assert [row.event for row in rows][5:] == [
            "SessionFirstPartyHangup",
            "SessionFirstPartyComplete",
            "SessionSecondPartyHangup",
            "SessionSecondPartyComplete",
            "SessionPartiesHangup",
        ]
        assert [row.sequence for row in rows] == list(range(1, 11))
        for row in rows[5:]:
            payload = orjson.loads(row.payload)
            assert payload["From"] == s.first.lstrip("+")
            assert payload["To"] == s.second.lstrip("+")
            assert payload["Duration"] == "3600"
            assert payload["BilledDuration"] == "3600"
            assert payload["PlivoHangupCause"] == "call_time_limit_reached"
            assert payload["PlivoHangupCauseCode"] == str(HangupCause.TIME_LIMIT.code)

    run_scenario(service_database, scenario)


def test_events_of_a_busy_callee(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, callback_url=CALLBACK)
        interaction = await start(ctx, clock, s.number, s.first)
        await leg_event(ctx, interaction, Role.SECOND, LegEvent.RINGING)
        clock.advance(4)
        interaction.statuses[Role.SECOND] = LegStatus.BUSY
        interaction.statuses[Role.FIRST] = LegStatus.FAILED
        interaction.hangup_cause = HangupCause.BUSY
        await call_ended(ctx, interaction)

        rows = await events(ctx, s.session)
        assert [row.event for row in rows] == [
            "SessionFirstPartyInitiated",
            "SessionSecondPartyInitiated",
            "SessionSecondPartyRing",
            "SessionFirstPartyFailed",
            "SessionSecondPartyFailed",
            "SessionPartiesHangup",
        ]
        assert [row.sequence for row in rows] == list(range(1, 7))
        for row in rows[3:]:
            payload = orjson.loads(row.payload)
            assert payload["SequenceNumber"] == str(row.sequence)
            assert payload["From"] == s.first.lstrip("+")
            assert payload["To"] == s.second.lstrip("+")
            assert payload["VirtualNumber"] == s.number.lstrip("+")
            assert (payload["Duration"], payload["BilledDuration"]) == ("0", "0")
            assert payload["PlivoHangupCause"] == "busy_line"
            assert payload["PlivoHangupCauseCode"] == str(HangupCause.BUSY.code)
        assert orjson.loads(rows[4].payload)["CallUUID"] == interaction.leg_uuids[Role.SECOND]

    run_scenario(service_database, scenario)


def test_sequence_numbers_continue_across_calls_and_expiry(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, callback_url=CALLBACK, session_expiry=600)
        await answered_call(ctx, clock, s.number, s.first, talk=10, hung_up_by=Role.FIRST)
        await answered_call(ctx, clock, s.number, s.second, talk=10, hung_up_by=Role.FIRST)
        clock.advance(600)
        assert await sweeper.sweep_all(ctx) >= 1
        rows = await events(ctx, s.session)
        # Per call: 2 initiated, ringing, 2 answers, 1 hangup, 2 completes, parties hangup.
        assert len(rows) == 9 + 9 + 1
        assert [row.sequence for row in rows] == list(range(1, 20))
        assert [orjson.loads(row.payload)["SequenceNumber"] for row in rows] == [
            str(n) for n in range(1, 20)
        ]
        assert rows[-1].event == "SessionTimeout"
        second_call = [orjson.loads(row.payload) for row in rows[9:18]]
        assert {p["From"] for p in second_call} == {s.second.lstrip("+")}
        assert [p["EventName"] for p in second_call][5:] == [
            "SessionSecondPartyComplete",
            "SessionFirstPartyHangup",
            "SessionFirstPartyComplete",
            "SessionPartiesHangup",
        ]

    run_scenario(service_database, scenario)


def test_no_callback_url_no_events(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx)
        assert s.session.settings.callback_url == ""
        await answered_call(ctx, clock, s.number, s.first, talk=42)
        busy = await start(ctx, clock, s.number, s.second)
        busy.statuses[Role.FIRST] = LegStatus.BUSY
        busy.statuses[Role.SECOND] = LegStatus.FAILED
        busy.hangup_cause = HangupCause.BUSY
        await call_ended(ctx, busy)
        assert await events(ctx, s.session) == []
        async with ctx.db.read() as conn:
            mine = await conn.execute(select(outbox).where(outbox.c.account_id == s.account.id))
            assert mine.all() == []
        # The bookkeeping happened all the same.
        after = await read(ctx, s)
        assert after.total_call_count == 4
        assert len(after.interactions) == 2

    run_scenario(service_database, scenario)


# --- PIN entry: the digits pick the session and the party -------------------------------

PIN_SESSION = {
    "is_pin_authentication_required": True,
    "pin_prompt_play": "https://example.com/pin.wav",
}


async def pin_setup(ctx: ServiceContext, first_pin: str, second_pin: str) -> Setup:
    return await setup(ctx, first_party_pin=first_pin, second_party_pin=second_pin, **PIN_SESSION)


def test_a_stranger_on_a_pin_number_is_asked_for_a_pin(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await pin_setup(ctx, "4712", "5830")
        stranger = party_number()
        assert await route_call(ctx, s.number, stranger) == AskPin(s.session, stranger)
        # A party is let through, and the session is told it was an authorised caller.
        decision = await bridge(ctx, s.number, s.first)
        assert decision.authorized_caller

    run_scenario(service_database, scenario)


def test_match_pin_finds_the_party_and_bridges_to_the_other(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await pin_setup(ctx, "4712", "5830")
        first = await match_pin(ctx, s.number, "4712", complete=True)
        assert first == Bridge(s.session, Role.FIRST, s.first, s.second)
        second = await match_pin(ctx, s.number, "5830", complete=False)
        assert second == Bridge(s.session, Role.SECOND, s.second, s.first)
        for wrong in ("4711", "47120", "0000", "58"):
            assert await match_pin(ctx, s.number, wrong, complete=True) is None
        # Another number's PIN is no PIN here.
        other = await pin_setup(ctx, "1111", "2222")
        assert await match_pin(ctx, s.number, "1111", complete=True) is None
        assert await match_pin(ctx, other.number, "1111", complete=True) is not None

    run_scenario(service_database, scenario)


def test_a_pin_that_begins_a_longer_one_waits_for_the_end_of_the_entry(
    service_database: str,
) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        # Two sessions on one number: "1234" and "12345" are both PINs there.
        s = await pin_setup(ctx, "1234", "9999")
        extra = await sessions.create_session(
            ctx,
            s.account,
            parse_create(
                {
                    "first_party": party_number(),
                    "second_party": party_number(),
                    "first_party_pin": "12345",
                    "second_party_pin": "8888",
                    **PIN_SESSION,
                },
                Profile.CURRENT,
            ),
        )
        assert extra.virtual_number == s.number
        assert await match_pin(ctx, s.number, "1234", complete=False) is None
        short = await match_pin(ctx, s.number, "1234", complete=True)
        assert isinstance(short, Bridge) and short.session.uuid == s.session.uuid
        longer = await match_pin(ctx, s.number, "12345", complete=False)
        assert isinstance(longer, Bridge) and longer.session.uuid == extra.uuid

    run_scenario(service_database, scenario)


def test_an_expired_sessions_pin_matches_nothing(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await pin_setup(ctx, "4712", "5830")
        await sessions.expire_session(ctx, s.account, s.session.uuid)
        assert await match_pin(ctx, s.number, "4712", complete=True) is None

    run_scenario(service_database, scenario)


def test_pin_status_and_play_failed_events(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(
            ctx,
            callback_url=CALLBACK,
            **PIN_SESSION,
            first_party_pin="4712",
            second_party_pin="5830",
        )
        stranger = party_number()
        await pin_status(ctx, s.session, stranger, PinStatus.FAILED, 1)
        await pin_status(ctx, s.session, stranger, PinStatus.SUCCESS, 1)
        interaction = await start(ctx, clock, s.number, s.first)
        await play_failed(
            ctx, s.session, "https://example.com/x.wav", "HTTP 404", caller=interaction.caller
        )
        async with ctx.db.read() as conn:
            rows = (await conn.execute(select(outbox).order_by(outbox.c.sequence))).all()
        payloads = [orjson.loads(r.payload) for r in rows if r.session_id == s.session.id]
        names = [p["EventName"] for p in payloads]
        assert names[:2] == ["SessionPinAuthenticationStatus"] * 2
        assert [p["PinAuthenticationStatus"] for p in payloads[:2]] == ["failed", "success"]
        assert [p["PinRetryCounter"] for p in payloads[:2]] == ["1", "1"]
        assert payloads[0]["From"] == stranger.lstrip("+")
        assert payloads[0]["SessionUUID"] == s.session.uuid
        [failed] = [p for p in payloads if p["EventName"] == "SessionPlayFailed"]
        assert failed["Reason"] == "HTTP 404"
        assert failed["PlayUrl"] == "https://example.com/x.wav"
        assert failed["From"] == s.first.lstrip("+")
        assert [int(p["SequenceNumber"]) for p in payloads] == list(range(1, len(payloads) + 1))

    run_scenario(service_database, scenario)
