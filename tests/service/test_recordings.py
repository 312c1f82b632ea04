"""Recordings (veil/service/recordings.py) on a real database in fake time: the call
plane's three reports (initiated, completed, failed), the outbox events they write to
the session's recording_callback_url, the stored recording, the interaction's
recording_resource_url, and the Recording resource's list, scope and delete."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.recording_support import recorded_call
from tests.service.conftest import run_scenario
from tests.utils import party_number, pool_number
from veil.api.plivo.shapes import session_object
from veil.clock import FakeClock
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.calls import LegStatus, Role
from veil.domain.errors import NotFound
from veil.domain.ids import new_uuid
from veil.domain.recordings import parse_recording_query
from veil.domain.session import Session
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers, sessions
from veil.service.calls import Interaction, call_ended, call_started
from veil.service.context import ServiceContext
from veil.service.recordings import (
    delete_recording,
    get_recording,
    list_recordings,
    recording_failed,
    recording_file,
    recording_file_path,
)
from veil.store.tables import outbox

PUBLIC = "https://veil.example.com"
RECORDING_CALLBACK = "https://example.com/recordings"
CALLBACK = "https://example.com/events"


@dataclass
class Setup:
    ctx: ServiceContext
    account: Account
    session: Session


async def setup(
    ctx: ServiceContext,
    *,
    owner: Account | None = None,
    parent: Account | None = None,
    **extra: Any,
) -> Setup:
    """A session that records, on a number of its own; a new account unless given."""
    ctx = replace(ctx, public_url=PUBLIC)
    account = owner or await accounts.create_account(ctx, name="Acme")
    principal = parent or account
    await numbers.add_numbers(
        ctx, principal, [pool_number()], subaccount=account.auth_id if parent else None
    )
    params = {
        "first_party": party_number(),
        "second_party": party_number(),
        "record": True,
        **extra,
    }
    if parent:
        params["subaccount"] = account.auth_id
    session = await sessions.create_session(ctx, principal, parse_create(params, Profile.CURRENT))
    return Setup(ctx, account, session)


async def outbox_rows(ctx: ServiceContext, session: Session) -> list[Any]:
    async with ctx.db.read() as conn:
        result = await conn.execute(
            select(outbox).where(outbox.c.session_id == session.id).order_by(outbox.c.sequence)
        )
        return list(result.all())


def stamp(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M:%S"))


def digits(number: str) -> str:
    return number.lstrip("+")


def test_recording_file_path(tmp_path: Path) -> None:
    uuid = new_uuid()
    assert recording_file_path(tmp_path, 7, uuid, "mp3") == tmp_path / "files" / "7" / (
        uuid + ".mp3"
    )
    assert recording_file_path(tmp_path, 7, uuid, "wav").name == uuid + ".wav"
    with pytest.raises(ValueError, match="UUID"):
        recording_file_path(tmp_path, 7, "../../etc/passwd", "mp3")
    with pytest.raises(ValueError, match="mp3 or wav"):
        recording_file_path(tmp_path, 7, uuid, "ogg")


def test_a_recorded_call_is_stored_linked_and_reported(
    service_database: str, tmp_path: Path
) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(
            ctx,
            recording_callback_url=RECORDING_CALLBACK,
            recording_callback_method="GET",
            callback_url=CALLBACK,
        )
        ctx = s.ctx
        start = clock.now()
        clock.advance(0.25)  # the file is stored a little after the call began
        call = await recorded_call(
            ctx, s.session, tmp_path, start=start, talk=15.04, caller_role=Role.SECOND
        )
        interaction, file = call.interaction, call.file
        session = s.session
        caller, callee = session.second_party, session.first_party

        # The outbox: one series of sequence numbers for both URLs.
        rows = await outbox_rows(ctx, session)
        sequences = [row.sequence for row in rows]
        assert sequences == list(range(1, len(rows) + 1))
        recording_rows = [row for row in rows if row.url == RECORDING_CALLBACK]
        assert [row.event for row in recording_rows] == [
            "SessionRecordingInitiated",
            "SessionRecordingCompleted",
        ]
        assert all(row.method == "GET" for row in recording_rows)
        assert all(row.account_id == s.account.id for row in recording_rows)
        assert {row.url for row in rows} == {RECORDING_CALLBACK, CALLBACK}
        names = [row.event for row in rows]
        # Initiated while the call is up, completed after its hangup events.
        assert names.index("SessionRecordingInitiated") < names.index("SessionPartiesHangup")
        assert names[-1] == "SessionRecordingCompleted"

        initiated, completed = (orjson.loads(row.payload) for row in recording_rows)
        common = {
            "SessionUUID": session.uuid,
            "VirtualNumber": digits(session.virtual_number),
            "From": digits(caller),
            "To": digits(callee),
            "RecordingUUID": file.uuid,
            "RecordingStartTime": stamp(start),
        }
        assert initiated == {
            **common,
            "EventName": "SessionRecordingInitiated",
            "EventTimestamp": stamp(clock.now()),
            "SequenceNumber": str(recording_rows[0].sequence),
            "RecordingURL": "",
            "RecordingResourceURL": "",
            "RecordingDuration": "",
            "RecordingEndTime": "",
            "RecordingFormat": ".mp3",
        }
        auth_id = s.account.auth_id
        assert completed == {
            **common,
            "EventName": "SessionRecordingCompleted",
            "EventTimestamp": stamp(clock.now()),
            "SequenceNumber": str(recording_rows[1].sequence),
            "RecordingURL": f"{PUBLIC}/v1/Account/{auth_id}/Recording/{file.uuid}.mp3",
            "RecordingResourceURL": f"{PUBLIC}/v1/Account/{auth_id}/Recording/{file.uuid}/",
            "RecordingDuration": "15",
            "RecordingEndTime": stamp(start + timedelta(seconds=15.04)),
            "RecordingFormat": ".mp3",
        }
        assert all(isinstance(v, str) for v in initiated.values())
        assert all(isinstance(v, str) for v in completed.values())

        # The stored recording.
        recording = await get_recording(ctx, s.account, file.uuid)
        assert recording.recording_id == file.uuid
        assert (recording.account_id, recording.main_account_id) == (s.account.id, s.account.id)
        assert recording.session_id == session.id
        assert recording.interaction_uuid == interaction.uuid
        assert recording.call_uuid == interaction.leg_uuids[Role.SECOND]  # the caller's leg
        assert recording.recording_type == "call"
        assert recording.file_format == "mp3"
        assert Path(recording.path) == file.path.absolute()
        assert recording.duration == pytest.approx(15.04)
        assert recording.start_time == start
        assert recording.end_time == start + timedelta(seconds=15.04)
        assert (recording.from_number, recording.to_number) == (caller, callee)
        assert recording.add_time == clock.now()
        assert await recording_file(ctx, s.account, file.uuid, "mp3") == recording
        with pytest.raises(NotFound):
            await recording_file(ctx, s.account, file.uuid, "wav")

        # The session shows the recording on its interaction.
        got = await sessions.get_session(ctx, s.account, session.uuid)
        [record] = got.interactions
        assert record.uuid == interaction.uuid
        assert record.recording_id == file.uuid
        account_url = f"{PUBLIC}/v1/Account/{auth_id}"
        [shown] = session_object(got, clock.now(), account_url)["interaction"]
        assert shown["recording_resource_url"] == f"{account_url}/Recording/{file.uuid}/"

    run_scenario(service_database, scenario)


def test_a_wav_recording_and_a_call_without_one(service_database: str, tmp_path: Path) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, record_file_format="wav", recording_callback_url=RECORDING_CALLBACK)
        ctx = s.ctx
        # A call that was not recorded (nobody answered) leaves its interaction without one.
        unanswered = Interaction(s.session, Role.FIRST, clock.now())
        unanswered.leg_uuids[Role.FIRST] = new_uuid()
        unanswered.leg_uuids[Role.SECOND] = new_uuid()
        await call_started(ctx, unanswered)
        unanswered.statuses[Role.SECOND] = LegStatus.NO_ANSWER
        clock.advance(30)
        await call_ended(ctx, unanswered)
        clock.advance(30)
        call = await recorded_call(ctx, s.session, tmp_path, start=clock.now(), talk=61)
        assert call.file.path.suffix == ".wav"
        rows = [r for r in await outbox_rows(ctx, s.session) if r.url == RECORDING_CALLBACK]
        completed = orjson.loads(rows[-1].payload)
        assert completed["RecordingFormat"] == ".wav"
        assert completed["RecordingDuration"] == "61"
        assert completed["RecordingURL"].endswith(f"/Recording/{call.file.uuid}.wav")
        got = await sessions.get_session(ctx, s.account, s.session.uuid)
        shown = session_object(got, clock.now(), "")["interaction"]
        assert [i["recording_resource_url"] for i in shown] == [
            None,
            f"/Recording/{call.file.uuid}/",
        ]

    run_scenario(service_database, scenario)


def test_a_failed_recording_is_reported(service_database: str) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(
            ctx, recording_callback_url=RECORDING_CALLBACK, recording_callback_method="POST"
        )
        ctx = s.ctx
        interaction = Interaction(s.session, Role.FIRST, clock.now())
        interaction.leg_uuids[Role.FIRST] = new_uuid()
        interaction.leg_uuids[Role.SECOND] = new_uuid()
        clock.advance(5)
        await recording_failed(ctx, interaction, "rtpengine refused to record")
        clock.advance(5)
        await recording_failed(ctx, interaction, "conversion failed")
        rows = await outbox_rows(ctx, s.session)
        assert [row.event for row in rows] == ["SessionRecordingFailed"] * 2
        assert [row.sequence for row in rows] == [1, 2]
        assert [row.method for row in rows] == ["POST", "POST"]
        first = orjson.loads(rows[0].payload)
        assert first == {
            "EventName": "SessionRecordingFailed",
            "EventTimestamp": stamp(clock.now() - timedelta(seconds=5)),
            "SessionUUID": s.session.uuid,
            "VirtualNumber": digits(s.session.virtual_number),
            "SequenceNumber": "1",
            "From": digits(s.session.first_party),
            "To": digits(s.session.second_party),
            "RecordingUUID": "",
            "RecordingURL": "",
            "RecordingResourceURL": "",
            "RecordingDuration": "",
            "RecordingStartTime": "",
            "RecordingEndTime": "",
            "RecordingFormat": "",
            "RecordingFailureReason": "rtpengine refused to record",
        }
        assert orjson.loads(rows[1].payload)["RecordingFailureReason"] == "conversion failed"
        # Nothing was stored.
        found, total = await list_recordings(ctx, s.account, parse_recording_query([], clock.now()))
        assert (found, total) == ([], 0)

    run_scenario(service_database, scenario)


def test_without_a_recording_callback_url_the_recording_is_stored_silently(
    service_database: str, tmp_path: Path
) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, callback_url=CALLBACK)
        ctx = s.ctx
        call = await recorded_call(ctx, s.session, tmp_path, start=clock.now(), talk=3)
        interaction = call.interaction
        await recording_failed(ctx, interaction, "ignored: nobody listens")
        rows = await outbox_rows(ctx, s.session)
        assert rows and all(row.url == CALLBACK for row in rows)
        assert not any(row.event.startswith("SessionRecording") for row in rows)
        assert [row.sequence for row in rows] == list(range(1, len(rows) + 1))
        recording = await get_recording(ctx, s.account, call.file.uuid)
        assert recording.interaction_uuid == interaction.uuid

    run_scenario(service_database, scenario)


def test_list_filters_pages_and_scope(service_database: str, tmp_path: Path) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        main = await setup(ctx)
        ctx = main.ctx
        # A subaccount of main's, with a session of its own.
        sub_account = await accounts.create_account(
            ctx, name="Sub", parent_auth_id=main.account.auth_id
        )
        sub = await setup(ctx, owner=sub_account, parent=main.account)
        stranger = await setup(ctx)

        clock.advance(-10 * 86400)  # one recording ten days ago: outside the default window
        old = await recorded_call(ctx, main.session, tmp_path, start=clock.now(), talk=5)
        clock.advance(10 * 86400)
        calls = []
        for session in (main.session, sub.session, main.session):
            clock.advance(60)
            calls.append(await recorded_call(ctx, session, tmp_path, start=clock.now(), talk=9))
        clock.advance(60)
        theirs = await recorded_call(ctx, stranger.session, tmp_path, start=clock.now(), talk=9)
        now = clock.now()

        def query(**params: str) -> Any:
            return parse_recording_query(list(params.items()), now)

        async def ids(principal: Account, **params: str) -> tuple[list[str], int]:
            found, total = await list_recordings(ctx, principal, query(**params))
            return [r.recording_id for r in found], total

        newest_first = [c.file.uuid for c in reversed(calls)]
        assert await ids(main.account) == (newest_first, 3)
        assert await ids(sub.account) == ([calls[1].file.uuid], 1)
        assert await ids(main.account, subaccount=sub.account.auth_id) == (
            [calls[1].file.uuid],
            1,
        )
        assert await ids(stranger.account) == ([theirs.file.uuid], 1)
        # Paging.
        assert await ids(main.account, limit="2") == (newest_first[:2], 3)
        assert await ids(main.account, limit="2", offset="2") == (newest_first[2:], 3)
        # Filters.
        first_call = calls[0]
        caller_leg = first_call.interaction.leg_uuids[Role.FIRST]
        assert await ids(main.account, call_uuid=caller_leg) == ([first_call.file.uuid], 1)
        assert await ids(main.account, from_number=digits(sub.session.first_party)) == (
            [calls[1].file.uuid],
            1,
        )
        assert await ids(main.account, to_number=main.session.second_party) == (
            [calls[2].file.uuid, calls[0].file.uuid],
            2,
        )
        assert await ids(main.account, recording_type="call") == (newest_first, 3)
        assert await ids(main.account, recording_type="conference") == ([], 0)
        # add_time: the newest call's store time, to the microsecond and as a minute.
        last_added = (await get_recording(ctx, main.account, calls[2].file.uuid)).add_time
        text = last_added.strftime("%Y-%m-%d %H:%M:%S.%f")
        assert await ids(main.account, add_time__gte=text) == ([calls[2].file.uuid], 1)
        assert await ids(main.account, add_time__gt=text) == ([], 0)
        # (With a bound given, the default window is off: the old one is in.)
        assert await ids(main.account, add_time__lt=text) == (
            [*newest_first[1:], old.file.uuid],
            3,
        )
        assert await ids(main.account, add_time__lte=text) == ([*newest_first, old.file.uuid], 4)
        assert await ids(main.account, add_time=last_added.strftime("%Y-%m-%d %H:%M")) == (
            [calls[2].file.uuid],
            1,
        )
        assert await ids(main.account, add_time__gte=str(last_added)) == (
            [calls[2].file.uuid],
            1,
        )
        # Older than the default seven days: only with an add_time bound.
        everything = await ids(main.account, add_time__gt="2000-01-01")
        assert everything == ([*newest_first, old.file.uuid], 4)

        # Another account's recording is not found, and says nothing about itself.
        for principal, recording_id in (
            (stranger.account, calls[0].file.uuid),
            (sub.account, calls[0].file.uuid),  # the main account's
            (main.account, theirs.file.uuid),
            (main.account, "not-a-uuid"),
            (main.account, new_uuid()),
        ):
            with pytest.raises(NotFound, match=messages.RECORDING_NOT_FOUND):
                await get_recording(ctx, principal, recording_id)
        # A main account reads its subaccount's.
        assert (await get_recording(ctx, main.account, calls[1].file.uuid)).account_id == (
            sub.account.id
        )

    run_scenario(service_database, scenario)


def test_delete_removes_the_row_the_file_and_the_link(
    service_database: str, tmp_path: Path
) -> None:
    async def scenario(ctx: ServiceContext, clock: FakeClock) -> None:
        s = await setup(ctx, recording_callback_url=RECORDING_CALLBACK)
        ctx = s.ctx
        call = await recorded_call(ctx, s.session, tmp_path, start=clock.now(), talk=9)
        other = await setup(ctx)
        assert await asyncio.to_thread(call.file.path.is_file)
        with pytest.raises(NotFound):
            await delete_recording(ctx, other.account, call.file.uuid)
        assert await asyncio.to_thread(call.file.path.is_file)

        await delete_recording(ctx, s.account, call.file.uuid)
        assert not await asyncio.to_thread(call.file.path.exists)
        with pytest.raises(NotFound):
            await get_recording(ctx, s.account, call.file.uuid)
        with pytest.raises(NotFound):
            await delete_recording(ctx, s.account, call.file.uuid)
        got = await sessions.get_session(ctx, s.account, s.session.uuid)
        [record] = got.interactions
        assert record.recording_id is None
        [shown] = session_object(got, clock.now(), "")["interaction"]
        assert shown["recording_resource_url"] is None

    run_scenario(service_database, scenario)
