"""Media anchored in rtpengine (``VEIL_MEDIA=auto``: Veil starts its own): each party's
SDP names only rtpengine, and the caller's RTP reaches the callee from rtpengine.

The callee's audio port is a socket of this test, so what arrived there is counted
packet by packet: SIPp plays its bundled G.711 A-law recording (30 ms packets)."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.calls.conftest import Plane
from tests.calls.media_phones import Ear
from tests.calls.sipp import Sipp, run
from tests.servers import database, veil_server

RTP_PORTS = range(10000, 60000)  # VEIL_MEDIA_PORTS' default


def media_of(body: bytes) -> tuple[str, int]:
    """(connection address, audio port) of an SDP body."""
    address = re.search(rb"^c=IN IP4 (\S+)", body, re.M)
    port = re.search(rb"^m=audio (\d+) ", body, re.M)
    assert address and port, body
    return address.group(1).decode(), int(port.group(1))


def test_a_call_is_anchored_in_rtpengine_and_audio_flows_through_it(media_plane: Plane) -> None:
    plane = media_plane
    session = plane.session()
    caller, callee = session["first_party"], session["second_party"]
    with Ear() as sink:
        b = Sipp(
            "callee_receives_audio",
            workdir=plane.workdir,
            local_port=plane.trunk_port,
            keys={"callee": callee, "rtp_port": str(sink.port)},
            timeout=20,
        )
        with b:
            a = run(
                "caller_plays_audio",
                workdir=plane.workdir,
                remote=plane.sip_address,
                keys={"caller": caller, "virtual": session["virtual_number"]},
                pause_ms=2500,
                timeout=20,
            )
            b_result = b.wait(20)
        time.sleep(0.2)  # the last packets in flight
    a.assert_ok()
    b_result.assert_ok()

    caller_media = media_of(a.sent_messages("INVITE")[0].parsed().body)
    offer_to_callee = b_result.received_messages("INVITE")[0].parsed().body
    answer_to_caller = a.received_messages(200, cseq="INVITE")[0].parsed().body
    # Each side sees rtpengine's address, never the other party's.
    b_address, b_port = media_of(offer_to_callee)
    a_address, a_port = media_of(answer_to_caller)
    assert (b_address, b_port) != caller_media and b_port in RTP_PORTS
    assert (a_address, a_port) != ("127.0.0.1", sink.port) and a_port in RTP_PORTS
    for body, hidden in ((offer_to_callee, caller), (answer_to_caller, callee)):
        assert hidden[-10:].encode() not in body
        assert re.search(rb"^o=- ", body, re.M) and b"\ns=-" in body.replace(b"\r", b"")

    # The recording's A-law packets arrived, all from rtpengine (the port it offered the
    # callee, thanks to symmetric RTP), none from the caller itself.
    audio = [p for p in sink.packets if p.payload_type == 8]
    sources = {p.source for p in sink.packets}
    assert len(audio) >= 50, f"{len(audio)} audio packets"
    assert sources == {(b_address, b_port)}
    assert caller_media not in sources
    sequence = [struct.unpack("!H", p.data[2:4])[0] for p in audio]
    assert len(set(sequence)) == len(sequence)  # each packet once, not duplicated


def rtpengine_pids(parent: int) -> list[int]:
    """rtpengine processes whose parent is ``parent`` (Veil's own child)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        if fields.get("Name", "").strip() == "rtpengine" and int(fields["PPid"]) == parent:
            found.append(int(status.parent.name))
    return found


def test_a_killed_rtpengine_is_restarted_and_calls_are_anchored_again(
    media_plane: Plane,
) -> None:
    plane = media_plane
    [old] = rtpengine_pids(plane.server.process.pid)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pids = rtpengine_pids(plane.server.process.pid)
        if pids and pids != [old]:
            break
        time.sleep(0.1)
    assert pids and old not in pids, "rtpengine was not restarted"
    # The new one answers at once: a call set up right away is anchored in it.
    test_a_call_is_anchored_in_rtpengine_and_audio_flows_through_it(plane)


def test_a_call_fails_cleanly_with_503_while_rtpengine_does_not_answer(
    media_plane: Plane,
) -> None:
    plane = media_plane
    session = plane.session()
    [engine] = rtpengine_pids(plane.server.process.pid)
    os.kill(engine, signal.SIGSTOP)  # alive but silent: every NG command times out
    try:
        a = run(
            "caller_expects_failure",
            workdir=plane.workdir,
            remote=plane.sip_address,
            keys={
                "caller": session["first_party"],
                "virtual": session["virtual_number"],
                "expected_status": "503",
            },
            timeout=20,
        )
    finally:
        os.kill(engine, signal.SIGCONT)
    a.assert_ok()
    [final] = a.received_messages(503)
    assert "Media engine unavailable" in (final.header("Reason") or "")
    done = plane.get(session["session_uuid"])
    deadline = time.monotonic() + 5
    while not done["interaction"] and time.monotonic() < deadline:
        time.sleep(0.05)
        done = plane.get(session["session_uuid"])
    assert done["status"] == "active"  # not left in-progress
    # And the next call is anchored again.
    test_a_call_is_anchored_in_rtpengine_and_audio_flows_through_it(plane)


def veil_rtpengines() -> set[int]:
    """rtpengine processes run from a config Veil generated (any parent)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"rtpengine") and any(b"veil-rtpengine-" in a for a in args):
            found.add(int(cmdline.parent.name))
    return found


def test_a_failed_start_leaves_no_rtpengine_behind(tmp_path: Path) -> None:
    """rtpengine starts before the SIP port is bound; if binding fails, Veil exits and
    must take its rtpengine with it."""
    before = veil_rtpengines()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken,
        database("sqlite", tmp_path) as url,
        pytest.raises(RuntimeError, match="exited"),
    ):
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        env = {"VEIL_MEDIA": "auto", "VEIL_SIP_LISTEN": f"127.0.0.1:{port}"}
        with veil_server(url, tmp_path, **env, VEIL_RECORDINGS_DIR=str(tmp_path / "rec")):
            pass
    assert veil_rtpengines() - before == set()
