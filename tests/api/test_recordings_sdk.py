"""The Recording resource driven by Plivo's official Python SDK (``client.recordings``:
list, get, delete) and the recordings' files over HTTP, on SQLite and PostgreSQL.

Recordings are made the way the call plane makes them: calls through sessions created
with the SDK, reported to the service layer on the server's own database
(tests/recording_support.py), with their files under the server's VEIL_RECORDINGS_DIR.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import plivo
import pytest
from plivo import exceptions
from plivo.resources.recordings import Recording as SdkRecording

from tests.api.sdk_support import create, fields, plivo_error, response_log, sdk_client
from tests.recording_support import RecordedCall, recorded_call
from tests.servers import Server
from tests.utils import Admin
from veil.clock import FakeClock
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.calls import Role
from veil.domain.ids import new_uuid
from veil.domain.session import Session
from veil.service import sessions
from veil.service.context import ServiceContext

# Every attribute of a recording object, with its JSON type (Plivo's fixtures and docs).
RECORDING_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "add_time": str,
    "call_uuid": str,
    "conference_name": type(None),
    "from_number": str,
    "to_number": str,
    "monthly_recording_storage_amount": int,
    "recording_duration_ms": str,
    "recording_end_ms": str,
    "recording_format": str,
    "recording_id": str,
    "recording_start_ms": str,
    "recording_storage_duration": int,
    "recording_storage_rate": int,
    "recording_type": str,
    "recording_url": str,
    "resource_uri": str,
    "rounded_recording_duration": int,
}


class Recorder:
    """Makes recorded calls on the server's database, in a fake time that starts an
    hour ago (inside the list's default seven-day window) and moves a minute per call."""

    def __init__(self, admin: Admin, server: Server) -> None:
        self.admin = admin
        self.dir = server.log_path.parent / "recordings"
        self.clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
        self.ctx = ServiceContext(db=admin.db, clock=self.clock, public_url=server.url)

    def session(self, client: plivo.RestClient, owner: Account, **params: Any) -> Session:
        created = create(client, record=True, **params)
        return self.admin.run(sessions.get_session(self.ctx, owner, created.session_uuid))

    def call(
        self, session: Session, *, talk: float = 15.04, caller_role: Role = Role.FIRST
    ) -> RecordedCall:
        self.clock.advance(60)
        return self.admin.run(
            recorded_call(
                self.ctx,
                session,
                self.dir,
                start=self.clock.now(),
                talk=talk,
                caller_role=caller_role,
            )
        )


@pytest.fixture
def recorder(admin: Admin, server: Server) -> Recorder:
    return Recorder(admin, server)


def body(client: plivo.RestClient) -> Any:
    """The JSON the SDK's last request was answered with."""
    return response_log(client).last.json()


def ms(moment: datetime) -> str:
    return f"{round(moment.timestamp() * 1000)}.00000"


def download(server: Server, url: str, account: Account | None) -> httpx.Response:
    auth = (account.auth_id, account.auth_token) if account else None
    assert url.startswith(server.url)
    return httpx.get(url, auth=auth)


def test_list_and_get_show_plivos_recording_object(
    client: plivo.RestClient, admin: Admin, account: Account, server: Server, recorder: Recorder
) -> None:
    admin.add_numbers(account, 2)
    mp3 = recorder.session(client, account)
    wav = recorder.session(client, account, record_file_format="wav")
    one = recorder.call(mp3, talk=15.04)
    two = recorder.call(wav, talk=61, caller_role=Role.SECOND)

    listed = client.recordings.list()
    raw = body(client)
    assert set(raw) == {"api_id", "meta", "objects"}
    assert raw["meta"] == {
        "count": 2,
        "total_count": 2,
        "limit": 20,
        "offset": 0,
        "next": None,
        "previous": None,
    }
    assert len(listed) == 2
    assert all(isinstance(r, SdkRecording) for r in listed)
    assert [r.recording_id for r in listed] == [two.file.uuid, one.file.uuid]  # newest first
    for obj in raw["objects"]:
        assert set(obj) == set(RECORDING_FIELD_TYPES)
        for name, expected in RECORDING_FIELD_TYPES.items():
            assert type(obj[name]) is expected, (name, obj[name])

    auth_id = account.auth_id
    newest, oldest = raw["objects"]
    assert oldest == {
        "add_time": one.file.start_time.isoformat(sep=" ", timespec="microseconds"),
        "call_uuid": one.interaction.leg_uuids[Role.FIRST],
        "conference_name": None,
        "from_number": mp3.first_party,
        "to_number": mp3.second_party,
        "monthly_recording_storage_amount": 0,
        "recording_duration_ms": "15040.00000",
        "recording_end_ms": ms(one.file.end_time),
        "recording_format": "mp3",
        "recording_id": one.file.uuid,
        "recording_start_ms": ms(one.file.start_time),
        "recording_storage_duration": 0,
        "recording_storage_rate": 0,
        "recording_type": "call",
        "recording_url": f"{server.url}/v1/Account/{auth_id}/Recording/{one.file.uuid}.mp3",
        "resource_uri": f"/v1/Account/{auth_id}/Recording/{one.file.uuid}/",
        "rounded_recording_duration": 60,
    }
    assert newest["recording_format"] == "wav"
    assert newest["recording_url"].endswith(f"/Recording/{two.file.uuid}.wav")
    assert (newest["from_number"], newest["to_number"]) == (wav.second_party, wav.first_party)
    assert newest["call_uuid"] == two.interaction.leg_uuids[Role.SECOND]
    assert newest["recording_duration_ms"] == "61000.00000"
    assert newest["rounded_recording_duration"] == 120

    got = client.recordings.get(one.file.uuid)
    assert isinstance(got, SdkRecording)
    assert got.id == one.file.uuid
    assert got.recording_url == oldest["recording_url"]
    raw_got = body(client)
    assert isinstance(raw_got.pop("api_id"), str)
    assert raw_got == oldest
    # The SDK's walk over every page follows meta.next.
    assert [r.recording_id for r in client.recordings] == [two.file.uuid, one.file.uuid]


def test_list_pages_and_filters(
    client: plivo.RestClient, admin: Admin, account: Account, server: Server, recorder: Recorder
) -> None:
    admin.add_numbers(account, 2)
    first = recorder.session(client, account)
    second = recorder.session(client, account)
    calls = [
        recorder.call(first),
        recorder.call(second),
        recorder.call(first, caller_role=Role.SECOND),
        recorder.call(second),
        recorder.call(first),
    ]
    newest_first = [c.file.uuid for c in reversed(calls)]

    def ids(**params: Any) -> list[str]:
        return [r.recording_id for r in client.recordings.list(**params)]

    assert ids() == newest_first
    # Pages.
    page = client.recordings.list(limit=2)
    assert [r.recording_id for r in page] == newest_first[:2]
    meta = body(client)["meta"]
    assert (meta["count"], meta["limit"], meta["offset"], meta["previous"]) == (5, 2, 0, None)
    base = f"{server.url}/v1/Account/{account.auth_id}/Recording/"
    assert meta["next"].startswith(base + "?")
    assert dict(parse_qsl(urlsplit(meta["next"]).query)) == {"limit": "2", "offset": "2"}
    assert ids(limit=2, offset=2) == newest_first[2:4]
    meta = body(client)["meta"]
    assert dict(parse_qsl(urlsplit(meta["previous"]).query)) == {"limit": "2", "offset": "0"}
    assert ids(limit=2, offset=4) == newest_first[4:]
    assert body(client)["meta"]["next"] is None
    assert ids(offset=5) == []
    assert body(client)["meta"]["count"] == 5

    # Filters.
    target = calls[2]
    assert ids(call_uuid=target.interaction.leg_uuids[Role.SECOND]) == [target.file.uuid]
    assert ids(from_number=first.second_party) == [target.file.uuid]
    assert ids(from_number=first.first_party.lstrip("+")) == [
        calls[4].file.uuid,
        calls[0].file.uuid,
    ]
    assert ids(to_number=second.second_party) == [calls[3].file.uuid, calls[1].file.uuid]
    assert ids(from_number=first.first_party, to_number=second.second_party) == []
    added = [c.file.start_time for c in calls]  # the fake clock stores each as it starts
    assert ids(add_time__gt=added[2]) == newest_first[:2]  # a datetime, as str() prints it
    assert ids(add_time__gte=added[2].strftime("%Y-%m-%d %H:%M")) == newest_first[:3]
    assert ids(add_time__lt=added[1].strftime("%Y-%m-%d %H:%M:%S")) == [calls[0].file.uuid]
    assert ids(add_time__lte=added[1].strftime("%Y-%m-%d %H:%M:%S")) == newest_first[3:]
    assert ids(add_time__gte=added[1], add_time__lt=added[3]) == [
        calls[2].file.uuid,
        calls[1].file.uuid,
    ]
    # The filters ride along on next/previous.
    ids(from_number=first.first_party, limit=1)
    query = dict(parse_qsl(urlsplit(body(client)["meta"]["next"]).query))
    assert query == {"from_number": first.first_party, "limit": "1", "offset": "1"}
    # recording_type, which the SDK does not send.
    auth = (account.auth_id, account.auth_token)
    for kind, count in (("call", 5), ("conference", 0)):
        response = httpx.get(base, params={"recording_type": kind}, auth=auth)
        assert response.status_code == 200
        assert response.json()["meta"]["count"] == count

    with plivo_error(
        client,
        exceptions.ValidationError,
        400,
        messages.bad_filter_time("add_time__gt"),
    ):
        client.recordings.list(add_time__gt="yesterday")
    # The SDK refuses limit 21 itself; Veil does too.
    response = httpx.get(base, params={"limit": "21"}, auth=auth)
    assert response.status_code == 400
    assert response.json()["error"] == messages.LIMIT_RANGE


def test_another_accounts_recordings_are_not_found(
    client: plivo.RestClient, admin: Admin, account: Account, server: Server, recorder: Recorder
) -> None:
    other = admin.create_account("Other")
    other_client = sdk_client(server.url, other)
    admin.add_numbers(account)
    admin.add_numbers(other)
    mine = recorder.call(recorder.session(client, account))
    theirs = recorder.call(recorder.session(other_client, other))

    assert [r.recording_id for r in client.recordings.list()] == [mine.file.uuid]
    assert [r.recording_id for r in other_client.recordings.list()] == [theirs.file.uuid]
    for recording_id in (theirs.file.uuid, new_uuid(), "not-a-uuid"):
        with plivo_error(
            client, exceptions.ResourceNotFoundError, 404, messages.RECORDING_NOT_FOUND
        ):
            client.recordings.get(recording_id)
        with plivo_error(
            client, exceptions.ResourceNotFoundError, 404, messages.RECORDING_NOT_FOUND
        ):
            client.recordings.delete(recording_id)
    assert theirs.file.path.is_file()  # nothing happened to it

    # Their file: not under my path, and not mine to fetch under theirs.
    theirs_url = other_client.recordings.get(theirs.file.uuid).recording_url
    mine_path = theirs_url.replace(other.auth_id, account.auth_id)
    response = download(server, mine_path, account)
    assert response.status_code == 404
    assert response.json()["error"] == messages.RECORDING_NOT_FOUND
    assert download(server, theirs_url, account).status_code == 401
    assert download(server, theirs_url, other).content == theirs.content


def test_subaccounts_see_their_own_and_the_main_account_all(
    client: plivo.RestClient, admin: Admin, account: Account, server: Server, recorder: Recorder
) -> None:
    sub = admin.create_account("Sub", parent=account)
    sub_client = sdk_client(server.url, sub)
    admin.add_numbers(account)
    admin.add_numbers(account, subaccount=sub)
    mains = recorder.call(recorder.session(client, account))
    subs = recorder.call(recorder.session(sub_client, sub))

    assert [r.recording_id for r in client.recordings.list()] == [subs.file.uuid, mains.file.uuid]
    assert [r.recording_id for r in client.recordings.list(subaccount=sub.auth_id)] == [
        subs.file.uuid
    ]
    assert [r.recording_id for r in sub_client.recordings.list()] == [subs.file.uuid]
    with plivo_error(
        sub_client, exceptions.ResourceNotFoundError, 404, messages.RECORDING_NOT_FOUND
    ):
        sub_client.recordings.get(mains.file.uuid)

    # Each reads the subaccount's recording under its own path.
    as_main = client.recordings.get(subs.file.uuid)
    as_sub = sub_client.recordings.get(subs.file.uuid)
    assert as_main.resource_uri == f"/v1/Account/{account.auth_id}/Recording/{subs.file.uuid}/"
    assert as_sub.resource_uri == f"/v1/Account/{sub.auth_id}/Recording/{subs.file.uuid}/"
    assert download(server, as_main.recording_url, account).content == subs.content
    assert download(server, as_sub.recording_url, sub).content == subs.content
    main_file = client.recordings.get(mains.file.uuid).recording_url
    sub_path = main_file.replace(account.auth_id, sub.auth_id)
    assert download(server, sub_path, sub).status_code == 404


def test_files_are_served_to_their_account(
    client: plivo.RestClient, admin: Admin, account: Account, server: Server, recorder: Recorder
) -> None:
    admin.add_numbers(account, 2)
    mp3 = recorder.call(recorder.session(client, account))
    wav = recorder.call(recorder.session(client, account, record_file_format="wav"))
    for call, media_type in ((mp3, "audio/mpeg"), (wav, "audio/wav")):
        url = client.recordings.get(call.file.uuid).recording_url
        response = download(server, url, account)
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.content == call.content
        assert int(response.headers["content-length"]) == len(call.content)
        assert download(server, url + "/", account).content == call.content
        # Without credentials, or with the wrong ones: 401 with Plivo's body.
        anonymous = download(server, url, None)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == messages.AUTH_FAILED
        wrong = httpx.get(url, auth=(account.auth_id, "not-the-token"))
        assert wrong.status_code == 401
    base = f"{server.url}/v1/Account/{account.auth_id}/Recording/"
    for missing in (
        f"{mp3.file.uuid}.wav",  # the other format
        f"{wav.file.uuid}.mp3",
        f"{new_uuid()}.mp3",
        f"{mp3.file.uuid}.ogg",
    ):
        response = download(server, base + missing, account)
        assert response.status_code == 404, missing
        assert response.json()["error"] == messages.RECORDING_NOT_FOUND


def test_delete_removes_the_recording_its_file_and_its_link(
    client: plivo.RestClient, admin: Admin, account: Account, server: Server, recorder: Recorder
) -> None:
    admin.add_numbers(account)
    session = recorder.session(client, account)
    kept = recorder.call(session)
    gone = recorder.call(session, caller_role=Role.SECOND)
    shown = client.masking_sessions.get_masking_session(session.uuid).response
    account_url = f"{server.url}/v1/Account/{account.auth_id}"
    assert [i.recording_resource_url for i in shown.interaction] == [
        f"{account_url}/Recording/{kept.file.uuid}/",
        f"{account_url}/Recording/{gone.file.uuid}/",
    ]
    url = client.recordings.get(gone.file.uuid).recording_url

    assert client.recordings.delete(gone.file.uuid) is None
    assert response_log(client).last.status_code == 204
    assert not Path(gone.file.path).exists()
    assert Path(kept.file.path).is_file()
    with plivo_error(client, exceptions.ResourceNotFoundError, 404, messages.RECORDING_NOT_FOUND):
        client.recordings.get(gone.file.uuid)
    assert download(server, url, account).status_code == 404
    assert [r.recording_id for r in client.recordings.list()] == [kept.file.uuid]
    shown = client.masking_sessions.get_masking_session(session.uuid).response
    assert [fields(i)["recording_resource_url"] for i in shown.interaction] == [
        f"{account_url}/Recording/{kept.file.uuid}/",
        None,
    ]
    # The SDK's resource object deletes itself too.
    client.recordings.get(kept.file.uuid).delete()
    assert client.recordings.list().objects == []
    assert not Path(kept.file.path).exists()
