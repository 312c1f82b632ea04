"""The media features through a real ``veil serve`` with its own rtpengine: the PIN IVR,
the unknown-caller announcement, play URLs and recordings.

Prompts are pure tones served over HTTP by the test, and each party's audio port is an
``Ear`` of the test, so which prompt a party heard, in which order, and whether any key
press reached the other party is read from the RTP itself. SIPp types keys with its
bundled RFC 2833 pcaps."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import plivo
import pytest

from tests.calls.conftest import Plane
from tests.calls.media_phones import (
    Ear,
    PromptServer,
    caller_scenario,
    keys_xml,
    pause,
    prompt_server,
)
from tests.calls.sipp import LoggedMessage, Sipp, run
from tests.utils import party_number, plivo_client
from veil.media.recording import decode_streams, read_pcap

FIRST_PIN, SECOND_PIN, WRONG_PIN = "4712", "5830", "9306"
SOURCE = Path("/usr/share/sip-tester/g711a.pcap")  # what the caller says: 7.08 s of A-law


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromptServer]:
    with prompt_server(tmp_path_factory.mktemp("prompts")) as server:
        yield server


def pin_session(plane: Plane, prompts: PromptServer, **params: Any) -> dict[str, Any]:
    params = {
        "is_pin_authentication_required": True,
        "first_party_pin": FIRST_PIN,
        "second_party_pin": SECOND_PIN,
        "pin_prompt_play": prompts.prompt("pin"),
        "incorrect_pin_play": prompts.prompt("wrong"),
        "callback_url": "http://127.0.0.1:9/events",
        **params,
    }
    return plane.session(**params)


def events(plane: Plane, uuid: str) -> list[tuple[str, dict[str, str]]]:
    rows = plane.admin.sql(
        "SELECT o.event, o.payload FROM outbox o JOIN sessions s ON s.id = o.session_id"
        " WHERE s.uuid = :uuid ORDER BY o.sequence",
        uuid=uuid,
    )
    return [(row[0], json.loads(row[1])) for row in rows]


def wait_for_event(plane: Plane, uuid: str, name: str, timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        found = [payload for event, payload in events(plane, uuid) if event == name]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no {name}: {events(plane, uuid)}"
        time.sleep(0.1)


def call_through(
    plane: Plane,
    caller: str,
    virtual: str,
    steps: list[str],
    *,
    callee: str | None = None,
    talk_ms: int = 0,
    veil_hangs_up: bool = False,
) -> tuple[Any, Any, Ear, Ear]:
    """A call from ``caller``: its audio port and the callee's are ears of the test.
    With ``callee`` None no phone answers behind the trunk (none must be called)."""
    scenario = caller_scenario(
        plane.workdir / f"caller_{time.monotonic_ns()}.xml",
        steps,
        talk_ms=talk_ms,
        veil_hangs_up=veil_hangs_up,
    )
    with Ear() as a_ear, Ear() as b_ear:
        b_result = None
        if callee is not None:
            b = Sipp(
                "callee_receives_audio",
                workdir=plane.workdir,
                local_port=plane.trunk_port,
                keys={"callee": callee, "rtp_port": str(b_ear.port)},
                timeout=60,
            )
            with b:
                a = _caller(plane, scenario, caller, virtual, a_ear)
                b_result = b.wait(60)
        else:
            a = _caller(plane, scenario, caller, virtual, a_ear)
        time.sleep(0.2)  # the last packets in flight
    return a, b_result, a_ear, b_ear


def _caller(plane: Plane, scenario: Path, caller: str, virtual: str, ear: Ear) -> Any:
    return run(
        scenario,
        workdir=plane.workdir,
        remote=plane.sip_address,
        keys={"caller": caller, "virtual": virtual, "rtp_port": str(ear.port)},
        timeout=60,
    )


def at(message: LoggedMessage) -> float:
    return datetime.timestamp(message.time)


def tones(ear: Ear) -> list[str]:
    return [tone.name for tone in ear.heard()]


# --- PIN ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller_kind", ["stranger", "forced known party"])
def test_the_right_pin_bridges_and_no_key_reaches_the_other_party(
    media_plane: Plane, prompts: PromptServer, caller_kind: str
) -> None:
    plane = media_plane
    forced = caller_kind != "stranger"
    session = pin_session(plane, prompts, force_pin_authentication=forced)
    uuid = session["session_uuid"]
    # A stranger types the first party's PIN (and calls as the first party); the known
    # second party, asked anyway, types its own.
    caller = session["second_party"] if forced else party_number()
    pin, callee = (FIRST_PIN, session["second_party"])
    if forced:
        pin, callee = SECOND_PIN, session["first_party"]
    a, b, a_ear, b_ear = call_through(
        plane,
        caller,
        session["virtual_number"],
        [pause(1500), keys_xml(pin), pause(1500)],
        callee=callee,
        talk_ms=2500,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    assert tones(a_ear)[:1] == ["pin"]
    # The callee was called as the other party, heard the caller, and no key.
    [invite] = b.received_messages("INVITE")
    assert callee in invite.start_line
    assert caller[-10:] not in invite.text
    assert len(b_ear.audio()) >= 30
    assert b_ear.keys() == 0
    status = wait_for_event(plane, uuid, "SessionPinAuthenticationStatus")
    assert status["PinAuthenticationStatus"] == "success"
    assert status["PinRetryCounter"] == "0"
    wait_for_event(plane, uuid, "SessionPartiesHangup")


def test_a_wrong_pin_hears_the_incorrect_pin_prompt_and_may_retry(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = pin_session(plane, prompts, pin_retry=1, pin_retry_wait=5)
    uuid = session["session_uuid"]
    # Prompt 1 s; wrong PIN and '#'; "incorrect" 1 s, 5 s wait, prompt 1 s; right PIN.
    a, b, a_ear, b_ear = call_through(
        plane,
        party_number(),
        session["virtual_number"],
        [pause(1500), keys_xml(WRONG_PIN + "#"), pause(8000), keys_xml(FIRST_PIN), pause(1500)],
        callee=session["second_party"],
        talk_ms=1500,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    assert tones(a_ear)[:3] == ["pin", "wrong", "pin"]
    assert b_ear.keys() == 0
    statuses = [
        (p["PinAuthenticationStatus"], p["PinRetryCounter"])
        for e, p in events(plane, uuid)
        if e == "SessionPinAuthenticationStatus"
    ]
    assert statuses == [("failed", "1"), ("success", "1")]


def test_the_last_wrong_pin_hangs_up(media_plane: Plane, prompts: PromptServer) -> None:
    plane = media_plane
    session = pin_session(plane, prompts, pin_retry=0)
    uuid = session["session_uuid"]
    a, _, a_ear, _ = call_through(
        plane,
        party_number(),
        session["virtual_number"],
        [pause(1500), keys_xml(WRONG_PIN + "#")],
        veil_hangs_up=True,
    )
    a.assert_ok()  # Veil sent the BYE
    assert tones(a_ear) == ["pin", "wrong"]
    wait_for_event(plane, uuid, "SessionPinAuthenticationStatus")
    names = [e for e, _ in events(plane, uuid)]
    assert names == ["SessionPinAuthenticationStatus"]  # no one was called
    assert plane.get(uuid)["interaction"] is None


def test_a_caller_who_types_nothing_is_hung_up_after_the_retries(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = pin_session(plane, prompts, pin_retry=0)
    a, _, a_ear, _ = call_through(
        plane, party_number(), session["virtual_number"], [], veil_hangs_up=True
    )
    a.assert_ok()
    kinds = {p.payload_type for p in a_ear.packets}
    assert tones(a_ear) == ["pin", "wrong"], (len(a_ear.packets), kinds, a.describe())


def test_a_pin_prompt_that_fails_is_replaced_by_veils_own_and_reported(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = pin_session(plane, prompts, pin_prompt_play=prompts.prompt("missing"))
    uuid = session["session_uuid"]
    stranger = party_number()
    a, b, a_ear, _ = call_through(
        plane,
        stranger,
        session["virtual_number"],
        [pause(3000), keys_xml(FIRST_PIN), pause(1000)],
        callee=session["second_party"],
        talk_ms=1000,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    # Veil's spoken prompt (2.7 s, no tone of the test's) reached the caller first.
    assert len(a_ear.audio()) >= 100
    assert "pin" not in tones(a_ear)
    failed = wait_for_event(plane, uuid, "SessionPlayFailed")
    assert failed["Reason"] == "HTTP 404"
    assert failed["From"] == stranger.lstrip("+")
    status = wait_for_event(plane, uuid, "SessionPinAuthenticationStatus")
    assert status["PinAuthenticationStatus"] == "success"


# --- announcements and play URLs --------------------------------------------------------


def test_an_unknown_caller_hears_unknown_caller_play_and_is_hung_up(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = plane.session(unknown_caller_play=prompts.prompt("sorry"))
    a, _, a_ear, _ = call_through(
        plane, party_number(), session["virtual_number"], [], veil_hangs_up=True
    )
    a.assert_ok()
    assert tones(a_ear) == ["sorry"]
    assert plane.get(session["session_uuid"])["interaction"] is None


def test_the_callers_play_url_is_heard_before_the_other_party_is_called(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = plane.session(first_party_play_url=prompts.prompt("hello"))
    a, b, a_ear, b_ear = call_through(
        plane,
        session["first_party"],
        session["virtual_number"],
        [pause(2500)],
        callee=session["second_party"],
        talk_ms=2000,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    [prompt] = a_ear.heard()
    assert prompt.name == "hello"
    [invite] = b.received_messages("INVITE")
    assert at(invite) >= prompt.end - 0.1  # the callee's leg began after it
    assert len(b_ear.audio()) >= 30  # then they talked


def test_the_callees_play_url_is_heard_before_the_caller_is_connected(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = plane.session(second_party_play_url=prompts.prompt("welcome"))
    a, b, a_ear, b_ear = call_through(
        plane,
        session["first_party"],
        session["virtual_number"],
        [pause(500)],
        callee=session["second_party"],
        talk_ms=2000,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    [prompt] = b_ear.heard()
    assert prompt.name == "welcome"
    assert "welcome" not in tones(a_ear)
    [answer] = a.received_messages(200, cseq="INVITE")
    assert at(answer) >= prompt.end - 0.1


def test_a_play_url_that_fails_is_skipped_and_reported(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session = plane.session(
        first_party_play_url=prompts.prompt("missing"), callback_url="http://127.0.0.1:9/e"
    )
    a, b, a_ear, _ = call_through(
        plane,
        session["first_party"],
        session["virtual_number"],
        [pause(500)],
        callee=session["second_party"],
        talk_ms=1000,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    assert a_ear.heard() == []
    failed = wait_for_event(plane, session["session_uuid"], "SessionPlayFailed")
    assert failed["Reason"] == "HTTP 404"
    assert failed["PlayUrl"] == prompts.prompt("missing")


# --- recordings -----------------------------------------------------------------------


def _rms(samples: list[int]) -> float:
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def _wav_samples(data: bytes, workdir: Path) -> tuple[list[int], float]:
    path = workdir / "got.wav"
    path.write_bytes(data)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / w.getframerate()
        channels = w.getnchannels()
    samples = list(memoryview(frames).cast("h"))[::channels]
    return samples, seconds


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_a_recorded_call_gives_a_file_holding_its_audio(
    media_plane: Plane, prompts: PromptServer, fmt: str
) -> None:
    plane = media_plane
    session = plane.session(
        record=True,
        record_file_format=fmt,
        recording_callback_url="http://127.0.0.1:9/recordings",
    )
    uuid = session["session_uuid"]
    a, b, _, _ = call_through(
        plane,
        session["first_party"],
        session["virtual_number"],
        [],
        callee=session["second_party"],
        talk_ms=7800,
    )
    a.assert_ok()
    assert b is not None
    b.assert_ok()
    initiated = wait_for_event(plane, uuid, "SessionRecordingInitiated")
    completed = wait_for_event(plane, uuid, "SessionRecordingCompleted")
    assert completed["RecordingUUID"] == initiated["RecordingUUID"]
    assert completed["RecordingFormat"] == f".{fmt}"
    assert completed["From"] == session["first_party"].lstrip("+")
    assert completed["To"] == session["second_party"].lstrip("+")
    assert completed["VirtualNumber"] == session["virtual_number"].lstrip("+")
    for name in ("RecordingURL", "RecordingResourceURL", "RecordingStartTime", "RecordingEndTime"):
        assert completed[name]

    # The file at RecordingURL: the caller's 7.08 s, not silence.
    auth = (plane.account.auth_id, plane.account.auth_token)
    got = httpx.get(completed["RecordingURL"], auth=auth, timeout=10)
    assert got.status_code == 200
    data = got.content
    if fmt == "mp3":
        assert got.headers["content-type"].startswith("audio/mpeg")
        source_mp3 = plane.workdir / "got.mp3"
        source_mp3.write_bytes(data)
        decoded = plane.workdir / "decoded.wav"
        lame = shutil.which("lame")
        assert lame is not None
        subprocess.run([lame, "--quiet", "--decode", str(source_mp3), str(decoded)], check=True)
        data = decoded.read_bytes()
    samples, seconds = _wav_samples(data, plane.workdir)
    [said] = decode_streams(read_pcap(SOURCE))
    assert abs(seconds - said.duration) <= 0.5, (seconds, said.duration)
    source_rms = _rms(list(said.samples()))
    assert 0.5 * source_rms <= _rms(samples) <= 2 * source_rms
    assert abs(float(completed["RecordingDuration"]) - said.duration) <= 0.5

    # Listed and served by the Recording API to its account only.
    [listed] = [
        r for r in plane.client.recordings.list() if r.recording_id == completed["RecordingUUID"]
    ]
    assert listed.recording_format == fmt
    assert listed.recording_url == completed["RecordingURL"]
    done = plane.get(uuid)
    assert done["interaction"][0]["recording_resource_url"].endswith(
        f"/Recording/{completed['RecordingUUID']}/"
    )
    plane.fresh_account()
    stranger = plivo_client(plane.server.url, plane.account)
    with pytest.raises(plivo.exceptions.ResourceNotFoundError):
        stranger.recordings.get(completed["RecordingUUID"])
    assert all(r.recording_id != completed["RecordingUUID"] for r in stranger.recordings.list())
    other = (plane.account.auth_id, plane.account.auth_token)
    assert httpx.get(completed["RecordingURL"], auth=other, timeout=10).status_code == 401


# --- initiate_call_to_first_party: Veil calls both parties --------------------------------


def place_greeted_call(plane: Plane, **params: Any) -> tuple[dict[str, Any], Any, Ear, Ear]:
    first, second = party_number(), party_number()
    with Ear() as first_ear, Ear() as second_ear:
        phones = Sipp(
            "parties_3pcc_greeted",
            workdir=plane.workdir,
            local_port=plane.trunk_port,
            calls=2,
            keys={
                "first": first,
                "second": second,
                "rtp_first": str(first_ear.port),
                "rtp_second": str(second_ear.port),
            },
            pause_ms=2000,
            timeout=30,
        )
        with phones:
            session = plane.session(
                first_party=first,
                second_party=second,
                initiate_call_to_first_party=True,
                **params,
            )
            result = phones.wait(30)
        time.sleep(0.2)
    return session, result, first_ear, second_ear


def invite_to(result: Any, number: str) -> LoggedMessage:
    [invite] = [
        m for m in result.received_messages("INVITE") if f"INVITE sip:{number}@" in m.start_line
    ]
    return invite


def test_initiated_call_first_party_hears_its_play_url_before_party_two_is_called(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session, result, first_ear, second_ear = place_greeted_call(
        plane, first_party_play_url=prompts.prompt("hello")
    )
    result.assert_ok()
    [prompt] = first_ear.heard()
    assert prompt.name == "hello"
    assert at(invite_to(result, session["second_party"])) >= prompt.end - 0.1
    assert second_ear.heard() == []


def test_initiated_call_second_party_hears_its_play_url_before_the_bridge(
    media_plane: Plane, prompts: PromptServer
) -> None:
    plane = media_plane
    session, result, first_ear, second_ear = place_greeted_call(
        plane,
        second_party_play_url=prompts.prompt("welcome"),
        callback_url="http://127.0.0.1:9/events",
        record=True,
        record_file_format="wav",
        recording_callback_url="http://127.0.0.1:9/recordings",
    )
    result.assert_ok()
    assert tones(second_ear) == ["welcome"]
    assert first_ear.heard() == []
    uuid = session["session_uuid"]
    wait_for_event(plane, uuid, "SessionPartiesHangup")
    done = plane.get(uuid)
    interaction = done["interaction"][0]
    assert interaction["first_party_status"] == interaction["second_party_status"] == "completed"
    # The call Veil placed is recorded too, from the bridge. These phones sent no audio
    # at all: the recording fails (and says why), and the call was not harmed by it.
    wait_for_event(plane, uuid, "SessionRecordingInitiated")
    failed = wait_for_event(plane, uuid, "SessionRecordingFailed")
    assert "no G.711 audio" in failed["RecordingFailureReason"]
    assert interaction["duration"] >= 1
