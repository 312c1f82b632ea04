"""The SIPp harness and every scenario pair, on loopback and without Veil: each caller
scenario calls a compatible callee scenario directly, so that a failure in the Veil call
tests is Veil's and not the harness's."""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.calls.sipp import (
    SCENARIOS,
    LoggedMessage,
    Sipp,
    SippResult,
    Transport,
    digest_ok,
    parse_headers,
    parse_message_log,
    run,
)

# The headers of the caller's INVITE that carry its number and that Veil must not copy.
LEAKY_HEADERS = [
    "Contact",
    "Diversion",
    "Remote-Party-ID",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "History-Info",
    "User-Agent",
    "Subject",
    "Call-Info",
    "X-Caller-Number",
    "From",
    "Call-ID",
]
# The headers of the callee's 180 and 200 that carry its number.
CALLEE_LEAKY_HEADERS = [
    "Contact",
    "P-Asserted-Identity",
    "Remote-Party-ID",
    "Server",
    "X-Callee-Number",
]


def number() -> str:
    """A fresh E.164 number in the 555 range."""
    return "+1555" + "".join(random.choices("0123456789", k=7))


@dataclass
class Parties:
    caller: str
    virtual: str
    callee: str

    def caller_keys(self, **extra: str) -> dict[str, str]:
        return {"caller": self.caller, "virtual": self.virtual, **extra}

    def callee_keys(self, **extra: str) -> dict[str, str]:
        # Without Veil the callee is dialled at the virtual number itself.
        return {"callee": self.virtual, **extra}


@pytest.fixture
def parties() -> Parties:
    return Parties(number(), number(), number())


@dataclass
class Call:
    caller: SippResult
    callee: SippResult


def call(
    workdir: Path,
    uac: str | Path,
    uas: str | Path,
    *,
    caller_keys: dict[str, str],
    callee_keys: dict[str, str],
    transport: Transport = "udp",
    auth: tuple[str, str] | None = None,
    timeout: float = 8.0,
) -> Call:
    with Sipp(uas, workdir=workdir, keys=callee_keys, transport=transport, timeout=timeout) as b:
        caller = run(
            uac,
            workdir=workdir,
            remote=b.address,
            keys=caller_keys,
            transport=transport,
            auth=auth,
            timeout=timeout,
        )
        callee = b.wait(timeout)
    return Call(caller, callee)


def branch(message: LoggedMessage) -> str:
    via = message.header("Via") or ""
    found = re.search(r"branch=([^;,\s]+)", via)
    assert found, via
    return found[1]


def uri(address: str) -> str:
    found = re.search(r"<([^>]+)>", address)
    assert found, address
    return found[1]


def tag(address: str) -> str:
    found = re.search(r";tag=([^;]+)", address)
    assert found, address
    return found[1]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_basic_call_caller_hangs_up(tmp_path: Path, parties: Parties, transport: Transport) -> None:
    done = call(
        tmp_path,
        "caller_hangs_up",
        "callee_answers",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
        transport=transport,
    )
    done.caller.assert_ok()
    done.callee.assert_ok()

    assert [m.method for m in done.callee.received_messages()] == ["INVITE", "ACK", "BYE"]
    assert {m.transport for m in done.callee.messages} == {transport.upper()}
    (invite,) = done.callee.received_messages("INVITE")
    assert invite.request_uri == f"sip:{parties.virtual}@127.0.0.1:{done.callee.local_port}"
    for name in LEAKY_HEADERS:
        assert parties.caller in (invite.header(name) or ""), name
    assert f"o=caller{parties.caller} " in invite.body
    assert f"s=Call from {parties.caller}" in invite.body
    # Veil's own parser reads what the callee got.
    parsed = invite.parsed()
    assert parsed.headers.get("X-Caller-Number") == parties.caller
    assert parsed.from_.uri.user == parties.caller

    # The callee's answer names the callee, so "number X appears nowhere" can fail.
    (ringing,) = done.caller.received_messages(180)
    (ok,) = done.caller.received_messages(200, cseq="INVITE")
    assert f"o=callee{parties.virtual} " in ok.body
    for name in CALLEE_LEAKY_HEADERS:
        assert parties.virtual in (ringing.header(name) or ""), name
        assert parties.virtual in (ok.header(name) or ""), name
    assert parties.caller in done.callee.received_text()

    # In-dialog requests go to the 200's Contact and carry both tags.
    contact = uri(ok.header("Contact") or "")
    for method in ("ACK", "BYE"):
        (request,) = done.caller.sent_messages(method)
        assert request.request_uri == contact
        assert tag(request.header("To") or "") == tag(ok.header("To") or "")
    assert done.caller.stats["SuccessfulCall(C)"] == "1"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_callee_hangs_up(tmp_path: Path, parties: Parties, transport: Transport) -> None:
    done = call(
        tmp_path,
        "caller_gets_bye",
        "callee_hangs_up",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
        transport=transport,
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    (invite,) = done.caller.sent_messages("INVITE")
    (ok,) = done.caller.received_messages(200, cseq="INVITE")
    (bye,) = done.caller.received_messages("BYE")
    # The callee built its BYE from the INVITE: to its Contact, tags swapped.
    assert bye.request_uri == uri(invite.header("Contact") or "")
    assert tag(bye.header("To") or "") == tag(invite.header("From") or "")
    assert tag(bye.header("From") or "") == tag(ok.header("To") or "")
    assert bye.header("Call-ID") == invite.header("Call-ID")
    assert done.callee.received_messages(200, cseq="BYE")


@pytest.mark.parametrize(
    ("uas", "status"),
    [
        ("callee_busy", 486),
        ("callee_rejects", 603),
        ("callee_unavailable", 480),
        ("callee_server_error", 503),
    ],
)
def test_refused_call(tmp_path: Path, parties: Parties, uas: str, status: int) -> None:
    done = call(
        tmp_path,
        "caller_expects_failure",
        uas,
        caller_keys=parties.caller_keys(expected_status=str(status)),
        callee_keys=parties.callee_keys(),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    assert [m.status for m in done.caller.received_messages()] == [100, status]
    # The ACK of a failure is in the INVITE's transaction: same branch.
    (invite,) = done.callee.received_messages("INVITE")
    (ack,) = done.callee.received_messages("ACK")
    assert branch(ack) == branch(invite)


def test_caller_expects_failure_detects_another_status(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_expects_failure",
        "callee_busy",
        caller_keys=parties.caller_keys(expected_status="603"),
        callee_keys=parties.callee_keys(),
    )
    done.callee.assert_ok()  # it was ACKed before the caller stopped
    assert done.caller.returncode == 97, done.caller.describe()
    assert "expected a 603 final response, got 486" in done.caller.error_log


def test_callee_checks_the_request_uri(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_hangs_up",
        "callee_answers",
        caller_keys=parties.caller_keys(),
        callee_keys={"callee": parties.callee},  # not the number the caller dials
    )
    done.caller.assert_ok()
    assert done.callee.returncode == 1, done.callee.describe()
    assert "Failed regexp match" in done.callee.error_log


# callee_no_answer's end, changed to answer the INVITE (487, ACKed) before the CANCEL: the
# 200 is built after the ACK, which shares the CANCEL's Via, From, To and Call-ID.
_487_FIRST = """  <recv request="CANCEL"/>
  <send>
    <![CDATA[

      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]callee[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: [$invite_cseq] CANCEL
      Content-Length: 0

    ]]>
  </send>
"""


def _487_before_200(workdir: Path) -> Path:
    text = (SCENARIOS / "callee_no_answer.xml").read_text()
    head = text[: text.index('  <recv request="CANCEL"/>')]
    tail = text[text.index("  <Reference") :]
    path = workdir / "callee_no_answer_487_first.xml"
    path.write_text(head + _487_FIRST + tail)
    return path


@pytest.mark.parametrize("order", ["200 first", "487 first"])
def test_caller_cancels_while_ringing(tmp_path: Path, parties: Parties, order: str) -> None:
    uas = "callee_no_answer" if order == "200 first" else _487_before_200(tmp_path)
    done = call(
        tmp_path,
        "caller_cancels",
        uas,
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    assert done.caller.received_messages(487, cseq="INVITE")
    assert done.caller.received_messages(200, cseq="CANCEL")
    (invite,) = done.callee.received_messages("INVITE")
    (cancel,) = done.callee.received_messages("CANCEL")
    (ack,) = done.callee.received_messages("ACK")
    assert branch(cancel) == branch(ack) == branch(invite)
    assert cancel.header("CSeq") == "1 CANCEL"
    (terminated,) = done.callee.sent_messages(487)
    assert terminated.header("CSeq") == "1 INVITE"


def test_reinvite_hold(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_reinvite",
        "callee_receives_reinvite",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    first, hold = done.callee.received_messages("INVITE")
    assert "a=sendrecv" in first.body
    assert "a=sendonly" in hold.body
    assert hold.header("CSeq") == "2 INVITE"
    assert tag(hold.header("To") or "")
    (answer,) = done.caller.received_messages(200, cseq="INVITE")[1:]
    assert "a=recvonly" in answer.body


def test_info_dtmf(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_info",
        "callee_receives_info",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    (info,) = done.callee.received_messages("INFO")
    assert info.header("Content-Type") == "application/dtmf-relay"
    assert info.body.split() == ["Signal=5", "Duration=160"]
    assert done.caller.received_messages(200, cseq="INFO")


def test_late_offer(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_late_offer",
        "callee_late_offer",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    (invite,) = done.callee.received_messages("INVITE")
    assert invite.body == "" and invite.header("Content-Type") is None
    (ok,) = done.caller.received_messages(200, cseq="INVITE")
    assert f"o=callee{parties.virtual} " in ok.body
    (ack,) = done.callee.received_messages("ACK")
    assert ack.header("Content-Type") == "application/sdp"
    assert "m=audio" in ack.body


def test_late_offer_callee_refuses_an_early_offer(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_hangs_up",
        "callee_late_offer",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
    )
    # The flow completes, but the callee marks the call failed: its INVITE had SDP and its
    # ACK did not.
    assert done.callee.returncode == 1, done.callee.describe()


def test_early_media(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_hangs_up",
        "callee_early_media",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    (progress,) = done.caller.received_messages(183)
    assert f"o=callee{parties.virtual} " in progress.body


def test_callee_gets_bye_measures_the_call(tmp_path: Path, parties: Parties) -> None:
    pause_ms = 400
    with Sipp("callee_gets_bye", workdir=tmp_path, keys=parties.callee_keys()) as b:
        caller = run(
            "caller_hangs_up",
            workdir=tmp_path,
            remote=b.address,
            keys=parties.caller_keys(),
            pause_ms=pause_ms,
        )
        callee = b.wait(8)
    caller.assert_ok()
    callee.assert_ok()
    assert not callee.sent_messages(180)
    (ack,) = callee.received_messages("ACK")
    (bye,) = callee.received_messages("BYE")
    held = (bye.time - ack.time).total_seconds()
    assert pause_ms / 1000 - 0.05 <= held < pause_ms / 1000 + 1, held


def test_proxy_authentication(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_authenticates",
        "callee_challenges",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(auth_user="veil-trunk"),
        auth=("veil-trunk", "s3cret"),
    )
    done.caller.assert_ok()
    done.callee.assert_ok()
    assert done.caller.received_messages(407)
    first, second = done.callee.received_messages("INVITE")
    assert first.header("Proxy-Authorization") is None
    (ack, _) = done.callee.received_messages("ACK")
    assert branch(ack) == branch(first) != branch(second)
    assert second.header("Call-ID") == first.header("Call-ID")
    assert digest_ok(second, "veil-trunk", "s3cret")
    assert not digest_ok(second, "veil-trunk", "wrong")
    assert not digest_ok(second, "someone-else", "s3cret")
    assert not digest_ok(first, "veil-trunk", "s3cret")


def test_proxy_authentication_checks_the_username(tmp_path: Path, parties: Parties) -> None:
    done = call(
        tmp_path,
        "caller_authenticates",
        "callee_challenges",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(auth_user="veil-trunk"),
        auth=("intruder", "s3cret"),
    )
    assert done.callee.returncode == 1, done.callee.describe()


@pytest.mark.parametrize(("password", "accepted"), [("s3cret", True), ("wrong", False)])
def test_www_authentication(
    tmp_path: Path, parties: Parties, password: str, accepted: bool
) -> None:
    done = call(
        tmp_path,
        "caller_authenticates",
        "callee_challenges_401",
        caller_keys=parties.caller_keys(),
        callee_keys=parties.callee_keys(auth_user="veil-trunk", auth_password="s3cret"),
        auth=("veil-trunk", password),
        timeout=4,
    )
    assert done.caller.received_messages(401)
    first, second = done.callee.received_messages("INVITE")
    assert branch(done.callee.received_messages("ACK")[0]) == branch(first)
    assert second.header("Authorization") is not None
    if accepted:
        done.caller.assert_ok()
        done.callee.assert_ok()
    else:
        assert done.callee.returncode == 1, done.callee.describe()
        assert "looking in 'false'" in done.callee.error_log
        assert done.caller.received_messages(403)
        assert not done.caller.ok


# --- the harness itself -----------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_ends_a_waiting_uas(tmp_path: Path, parties: Parties) -> None:
    with Sipp("callee_answers", workdir=tmp_path, keys=parties.callee_keys()) as b:
        assert b.running
        pid = b.pid
    result = b.stop()
    assert not b.running and not _alive(pid)
    assert result.killed and not result.ok
    assert result.messages == []


def test_wait_kills_after_its_timeout(tmp_path: Path, parties: Parties) -> None:
    b = Sipp("callee_answers", workdir=tmp_path, keys=parties.callee_keys()).start()
    result = b.wait(0.3)
    assert result.killed and not result.ok
    assert not _alive(b.pid)


def test_sipp_timeout_and_stop_keep_the_logs(tmp_path: Path, parties: Parties) -> None:
    # Both sides wait for the other to hang up: SIPp's own -timeout ends the caller.
    with Sipp("callee_answers", workdir=tmp_path, keys=parties.callee_keys()) as b:
        caller = run(
            "caller_gets_bye",
            workdir=tmp_path,
            remote=b.address,
            keys=parties.caller_keys(),
            timeout=1,
        )
        callee = b.stop()
    assert not caller.killed and caller.returncode == 255, caller.describe()
    assert "caller_gets_bye timed out after" in caller.error_log
    # A SIPp ended by stop() exits 0 but is not ok; what it got so far is logged.
    assert callee.killed and callee.returncode == 0 and not callee.ok
    assert [m.method for m in callee.received_messages()] == ["INVITE", "ACK"]


def test_a_missing_key_stops_sipp_at_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="Unsupported keyword 'callee'"):
        Sipp("callee_answers", workdir=tmp_path).start()


def test_parse_message_log_and_headers() -> None:
    message = (
        b"INVITE sip:+1@h SIP/2.0\r\nf: <sip:a@h>;tag=1\r\nSubject: a\r\n  b\r\n"
        b"Content-Length: 3\r\n\r\nv=0"
    )
    log = (
        b"----------------------------------------------- 2026-01-02 03:04:05.678901\n"
        b"UDP message received [%d] bytes :\n\n%s\n\n"
        b"----------------------------------------------- 2026-01-02 03:04:05.800000\n"
        b"TCP message sent (9 bytes):\n\nOPTIONS x\n"
    ) % (len(message), message)
    received, sent = parse_message_log(log)
    assert received.direction == "received" and received.transport == "UDP"
    assert received.raw == message
    assert received.method == "INVITE" and received.status is None
    assert received.header("From") == "<sip:a@h>;tag=1"
    assert received.header("subject") == "a b"
    assert received.body == "v=0"
    assert (sent.time - received.time).total_seconds() == pytest.approx(0.121099)
    assert sent.direction == "sent" and sent.raw == b"OPTIONS x"
    assert parse_headers("SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n\r\n") == (
        "SIP/2.0 180 Ringing",
        [("CSeq", "1 INVITE")],
    )
