"""Real calls through Veil: SIPp is the inbound trunk (the caller) and the phone behind the
outbound trunk (the callee). Every test checks what the far side received: the virtual
number as From and P-Asserted-Identity, and no trace of the other party's real number."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
import time
from typing import Any

import httpx
import pytest

from tests.calls.conftest import TRUNK_PASSWORD, TRUNK_USER, Plane
from tests.calls.sipp import Sipp, SippResult, digest_ok
from tests.utils import party_number

# Headers that name the caller and must never be copied to leg B (the caller scenarios
# send all of them, each holding the caller's number).
LEAKY = (
    "Diversion",
    "Remote-Party-ID",
    "P-Preferred-Identity",
    "History-Info",
    "User-Agent",
    "Subject",
    "Call-Info",
    "X-Caller-Number",
)


def digits(e164: str) -> str:
    """The national part of a number: what would show up in any leaked form of it."""
    return e164[-10:]


def assert_masked(result: SippResult, *, hidden: str, virtual: str, check_from: bool) -> None:
    """Nothing ``result``'s party received holds ``hidden``; its INVITE (if any) comes
    from the virtual number and carries none of the leaky headers."""
    text = result.received_text()
    assert text, "the party received nothing"
    assert digits(hidden) not in text, f"{hidden} leaked:\n{text}"
    if not check_from:
        return
    invites = result.received_messages("INVITE")
    assert invites, "no INVITE received"
    for invite in invites:
        message = invite.parsed()
        assert message.from_.uri.user == virtual
        pai = invite.header("P-Asserted-Identity")
        if message.to.tag is None:  # the initial INVITE asserts the identity
            assert pai is not None and f"sip:{virtual}@" in pai
        for name in LEAKY:
            assert invite.header(name) is None, f"{name} was copied"
        for name, _ in invite.headers:
            assert not name.lower().startswith("x-"), f"{name} was copied"
        if message.body:
            assert b"s=-" in message.body
            assert re.search(rb"^o=- ", message.body, re.M)


def numbers(session: dict[str, Any]) -> tuple[str, str, str]:
    """The virtual number, then the first party (the caller) and the second."""
    return session["virtual_number"], session["first_party"], session["second_party"]


def call_ok(a: SippResult, b: SippResult) -> None:
    a.assert_ok()
    b.assert_ok()


def wait_for(plane: Plane, uuid: str, check: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The session once ``check(session)`` holds (call bookkeeping is written just after
    the call ends, off the signalling path)."""
    deadline = time.monotonic() + timeout
    while True:
        session = plane.get(uuid)
        if check(session) or time.monotonic() > deadline:
            return session
        time.sleep(0.05)


@pytest.mark.parametrize("role", ["first", "second"])
def test_a_party_calls_the_other_through_the_virtual_number(plane: Plane, role: str) -> None:
    session = plane.session()
    virtual = session["virtual_number"]
    caller = session[f"{role}_party"]
    callee = session["second_party" if role == "first" else "first_party"]
    a, b = plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)
    # A new Call-ID on leg B: the caller's one starts with its own number.
    assert b.received_messages("INVITE")[0].header("Call-ID") != a.sent_messages("INVITE")[
        0
    ].header("Call-ID")
    # The caller got the callee's ringing and answer relayed, and its BYE was relayed.
    assert a.received(180) and a.received(200)
    assert b.received("BYE")

    done = wait_for(plane, session["session_uuid"], lambda s: s["total_call_count"] == 2)
    assert done["status"] == "active"
    assert done["total_call_count"] == 2
    assert done["total_call_billed_duration"] == 120  # two answered legs, a started minute
    assert done["last_interaction_time"]
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "completed"
    assert interaction["second_party_status"] == "completed"
    assert interaction["type"] == "call"
    assert interaction["first_party_resource_url"].endswith("/")


def test_the_same_call_over_tcp(tcp_plane: Plane) -> None:
    session = tcp_plane.session()
    virtual, caller, callee = numbers(session)
    a, b = tcp_plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    assert all(m.transport == "TCP" for m in b.received_messages())
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)


def test_the_same_call_on_postgresql(postgres_plane: Plane) -> None:
    session = postgres_plane.session()
    virtual, caller, callee = numbers(session)
    a, b = postgres_plane.call(
        "caller_hangs_up", "callee_answers", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)
    done = wait_for(postgres_plane, session["session_uuid"], lambda s: s["interaction"])
    assert done["total_call_count"] == 2


def test_early_media_is_relayed_without_the_callee_identity(plane: Plane) -> None:
    session = plane.session()
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_hangs_up", "callee_early_media", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    [early] = a.received_messages(183)
    assert b"m=audio" in early.parsed().body
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)


@pytest.mark.parametrize(
    ("scenario", "status", "leg_status"),
    [
        ("callee_busy", 486, "busy"),
        ("callee_rejects", 603, "failed"),
        ("callee_unavailable", 480, "no-answer"),
        ("callee_server_error", 503, "failed"),
    ],
)
def test_a_failed_leg_gives_the_caller_the_right_final_response(
    plane: Plane, scenario: str, status: int, leg_status: str
) -> None:
    session = plane.session()
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_expects_failure",
        scenario,
        caller=caller,
        callee=callee,
        virtual=virtual,
        caller_keys={"expected_status": str(status)},
    )
    call_ok(a, b)
    assert b.received("ACK"), "Veil must ACK the callee's final response"
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)
    done = wait_for(plane, session["session_uuid"], lambda s: s["interaction"])
    [interaction] = done["interaction"]
    assert interaction["second_party_status"] == leg_status
    assert done["total_call_billed_duration"] == 0
    assert done["status"] == "active"


def test_ring_timeout_cancels_the_callee_and_fails_the_caller_with_480(plane: Plane) -> None:
    session = plane.session()
    plane.set_session(session["session_uuid"], ring_timeout=1)
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_expects_failure",
        "callee_no_answer",
        caller=caller,
        callee=callee,
        virtual=virtual,
        caller_keys={"expected_status": "480"},
    )
    call_ok(a, b)
    assert b.received("CANCEL")
    [final] = a.received_messages(480)
    assert "Ring timeout" in (final.header("Reason") or "")
    done = wait_for(plane, session["session_uuid"], lambda s: s["interaction"])
    assert done["interaction"][0]["second_party_status"] == "no-answer"


def test_the_caller_cancels_while_the_callee_rings(plane: Plane) -> None:
    session = plane.session()
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_cancels", "callee_no_answer", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    assert a.received(487)
    assert b.received("CANCEL")
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)
    done = wait_for(plane, session["session_uuid"], lambda s: s["interaction"])
    assert done["interaction"][0]["first_party_status"] == "canceled"


def test_call_time_limit_hangs_up_both_parties(plane: Plane) -> None:
    session = plane.session()
    plane.set_session(session["session_uuid"], call_time_limit=1)
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_gets_bye", "callee_gets_bye", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    assert a.received("BYE") and b.received("BYE")
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)


def test_the_callee_hangs_up(plane: Plane) -> None:
    session = plane.session()
    virtual, caller, callee = (
        session["virtual_number"],
        session["second_party"],
        session["first_party"],
    )
    a, b = plane.call(
        "caller_gets_bye", "callee_hangs_up", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    [bye] = a.received_messages("BYE")
    assert digits(callee) not in bye.text
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)


def test_a_reinvite_for_hold_is_relayed(plane: Plane) -> None:
    session = plane.session()
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_reinvite",
        "callee_receives_reinvite",
        caller=caller,
        callee=callee,
        virtual=virtual,
    )
    call_ok(a, b)
    reinvite = b.received_messages("INVITE")[-1]
    assert b"a=sendonly" in reinvite.parsed().body
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)
    assert_masked(a, hidden=callee, virtual=virtual, check_from=False)


def test_info_dtmf_is_relayed(plane: Plane) -> None:
    session = plane.session()
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_info", "callee_receives_info", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    [info] = b.received_messages("INFO")
    assert b"Signal=5" in info.parsed().body
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)


def test_a_late_offer_from_the_trunk_is_bridged(plane: Plane) -> None:
    session = plane.session()
    virtual, caller, callee = numbers(session)
    a, b = plane.call(
        "caller_late_offer", "callee_late_offer", caller=caller, callee=callee, virtual=virtual
    )
    call_ok(a, b)
    [ack] = [m for m in b.received_messages("ACK") if m.body]
    assert b"m=audio" in ack.parsed().body
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)


def test_an_unknown_caller_is_rejected_and_nobody_is_called(plane: Plane) -> None:
    session = plane.session()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trunk:
        trunk.bind(("127.0.0.1", plane.trunk_port))
        trunk.settimeout(0.3)
        a = plane.caller(
            "caller_expects_failure",
            party_number(),
            session["virtual_number"],
            expected_status="403",
        )
        a.assert_ok()
        with pytest.raises(TimeoutError):
            trunk.recvfrom(65535)  # Veil sent nothing to the outbound trunk
    [final] = a.received_messages(403)
    assert "not a party" in (final.header("Reason") or "")
    assert plane.get(session["session_uuid"])["total_call_count"] == 0


@pytest.mark.parametrize("how", ["deleted", "unknown number"])
def test_a_call_to_a_number_without_an_active_session_gets_404(plane: Plane, how: str) -> None:
    session = plane.session()
    virtual = session["virtual_number"]
    if how == "deleted":
        plane.client.masking_sessions.delete_masking_session(session["session_uuid"])
    else:
        virtual = party_number()  # not in any pool
    a = plane.caller(
        "caller_expects_failure", session["first_party"], virtual, expected_status="404"
    )
    a.assert_ok()


@pytest.mark.parametrize(
    ("scenario", "status"), [("callee_challenges", 407), ("callee_challenges_401", 401)]
)
def test_the_outbound_trunk_digest_challenge_is_answered(
    auth_plane: Plane, scenario: str, status: int
) -> None:
    session = auth_plane.session()
    virtual, caller, callee = numbers(session)
    a, b = auth_plane.call(
        "caller_hangs_up",
        scenario,
        caller=caller,
        callee=callee,
        virtual=virtual,
        callee_keys={"auth_user": TRUNK_USER, "auth_password": TRUNK_PASSWORD},
    )
    call_ok(a, b)
    first, second = b.received_messages("INVITE")[:2]
    assert first.header("Call-ID") == second.header("Call-ID")
    assert digest_ok(second, TRUNK_USER, TRUNK_PASSWORD)
    assert not a.received(status), "the challenge is Veil's business, not the caller's"
    assert_masked(b, hidden=caller, virtual=virtual, check_from=True)


def test_a_call_goes_through_while_the_database_is_locked(plane: Plane) -> None:
    """Routing reads (WAL) while another writer holds the lock: signalling does not wait
    for the bookkeeping, which is written once the lock is gone."""
    session = plane.session()
    path = plane.server.database_url.split("///", 1)[1]
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        db = sqlite3.connect(path, timeout=10)
        db.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(20)
        db.rollback()
        db.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        a, b = plane.call(
            "caller_hangs_up",
            "callee_answers",
            caller=session["first_party"],
            callee=session["second_party"],
            virtual=session["virtual_number"],
        )
    finally:
        release.set()
        holder.join()
    call_ok(a, b)
    done = wait_for(plane, session["session_uuid"], lambda s: s["interaction"], timeout=15)
    assert done["total_call_count"] == 2


def test_the_session_reads_in_progress_during_a_call_and_active_after(plane: Plane) -> None:
    session = plane.session()
    plane.set_session(session["session_uuid"], call_time_limit=2)
    uuid = session["session_uuid"]
    with plane.callee("callee_gets_bye", session["second_party"]) as b:
        a = Sipp(
            "caller_gets_bye",
            workdir=plane.workdir,
            remote=plane.sip_address,
            keys={"caller": session["first_party"], "virtual": session["virtual_number"]},
            timeout=15,
        ).start()
        try:
            during = wait_for(plane, uuid, lambda s: s["status"] == "in-progress")
        finally:
            a_result = a.wait(20)
        b_result = b.wait(20)
    call_ok(a_result, b_result)
    assert during["status"] == "in-progress"
    after = wait_for(plane, uuid, lambda s: s["interaction"])
    assert after["status"] == "active"
    assert after["interaction"][0]["duration"] >= 1


def test_leg_events_reach_the_outbox_in_order_with_plivo_names(plane: Plane) -> None:
    session = plane.session(callback_url="http://127.0.0.1:9/callbacks")
    uuid = session["session_uuid"]
    a, b = plane.call(
        "caller_hangs_up",
        "callee_answers",
        caller=session["second_party"],
        callee=session["first_party"],
        virtual=session["virtual_number"],
    )
    call_ok(a, b)
    wait_for(plane, uuid, lambda s: s["interaction"])
    rows = plane.admin.sql(
        "SELECT o.event, o.sequence, o.payload FROM outbox o JOIN sessions s"
        " ON s.id = o.session_id WHERE s.uuid = :uuid ORDER BY o.sequence",
        uuid=uuid,
    )
    events = [row[0] for row in rows]
    # The second party called: its leg is the caller's, the first party's is dialled.
    assert events == [
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
    assert [row[1] for row in rows] == list(range(1, len(rows) + 1))
    last = json.loads(rows[-1][2])
    assert last["From"] == session["second_party"].lstrip("+")
    assert last["To"] == session["first_party"].lstrip("+")
    assert last["VirtualNumber"] == session["virtual_number"].lstrip("+")
    assert last["PlivoHangupCause"] == "normal_hangup"
    assert last["SequenceNumber"] == str(len(rows))


def test_calls_go_through_while_the_api_is_under_load(plane: Plane) -> None:
    session = plane.session()
    plane.admin.add_numbers(plane.account, 20)
    stop = threading.Event()
    answered: list[int] = []

    def hammer() -> None:
        url = f"{plane.server.url}/v1/Account/{plane.account.auth_id}/Masking/Session/"
        auth = (plane.account.auth_id, plane.account.auth_token)
        with httpx.Client(auth=auth, timeout=10) as http:
            for _ in range(2000):
                if stop.is_set():
                    return
                body = {"first_party": party_number(), "second_party": party_number()}
                answered.append(http.post(url, json=body).status_code)

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        results = [
            plane.call(
                "caller_hangs_up",
                "callee_answers",
                caller=session["first_party"],
                callee=session["second_party"],
                virtual=session["virtual_number"],
            )
            for _ in range(3)
        ]
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    for a, b in results:
        call_ok(a, b)
    assert len(answered) > 50 and set(answered) <= {201, 400}
