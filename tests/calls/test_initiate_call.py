"""``initiate_call_to_first_party``: Veil calls party one from the virtual number, then
party two, and bridges them (RFC 3725 flow IV, ``veil.calls.originate``).

Both legs go to the same outbound trunk, so one SIPp (``parties_3pcc``) plays both
phones, one SIPp call per party; its message log is split by Call-ID. Each phone's
messages carry its own number, so a leak of one party to the other shows as bytes."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from tests.calls.conftest import Plane
from tests.calls.sipp import LoggedMessage, Sipp, SippResult
from tests.utils import party_number
from veil.sip.message import Request


@dataclass
class Phone:
    """One party's side of the SIPp log: the messages of its own call (Call-ID)."""

    number: str
    messages: list[LoggedMessage]

    def received(
        self, what: str | int | None = None, *, cseq: str | None = None
    ) -> list[LoggedMessage]:
        return [m for m in self.messages if m.direction == "received" and m.matches(what, cseq)]

    def sent(
        self, what: str | int | None = None, *, cseq: str | None = None
    ) -> list[LoggedMessage]:
        return [m for m in self.messages if m.direction == "sent" and m.matches(what, cseq)]

    def received_bytes(self) -> bytes:
        return b"".join(m.raw for m in self.received())

    @property
    def invite(self) -> LoggedMessage:
        """The initial INVITE (no To tag)."""
        return next(m for m in self.received("INVITE") if m.parsed().to.tag is None)

    @property
    def reinvites(self) -> list[LoggedMessage]:
        return [m for m in self.received("INVITE") if m.parsed().to.tag is not None]


def phones(result: SippResult, first: str, second: str) -> tuple[Phone, Phone | None]:
    """Party one's and party two's calls (party two's is None if it was never called),
    told apart by the Request-URI user of each Call-ID's first INVITE."""
    calls: dict[str, list[LoggedMessage]] = {}
    for message in result.messages:
        calls.setdefault(message.header("Call-ID") or "", []).append(message)
    found: dict[str, Phone] = {}
    for messages in calls.values():
        invite = next(m for m in messages if m.direction == "received" and m.method == "INVITE")
        parsed = invite.parsed()
        assert isinstance(parsed, Request)
        user = parsed.uri.user
        assert user in (first, second), f"an INVITE to {user}"
        assert user not in found, f"{user} was called twice"
        found[user] = Phone(user, messages)
    assert first in found, "party one was never called\n" + result.describe()
    return found[first], found.get(second)


def place_call(
    plane: Plane, variant: str, *, calls: int = 2, pause_ms: int = 100, **params: Any
) -> tuple[dict[str, Any], SippResult]:
    """Start both phones, create the session (which starts the call), wait for the end."""
    first, second = party_number(), party_number()
    uas = Sipp(
        "parties_3pcc",
        workdir=plane.workdir,
        local_port=plane.trunk_port,
        transport=plane.transport,
        calls=calls,
        keys={"first": first, "second": second, "variant": variant},
        pause_ms=pause_ms,
        timeout=8,
    )
    with uas:
        session = plane.session(
            first_party=first, second_party=second, initiate_call_to_first_party=True, **params
        )
        result = uas.wait(10)
    assert session["first_party"] == first and session["second_party"] == second
    return session, result


def ended(plane: Plane, uuid: str, timeout: float = 5.0) -> dict[str, Any]:
    """The session once the call's interaction is stored (written just after the end)."""
    deadline = time.monotonic() + timeout
    while True:
        session = plane.get(uuid)
        if session["interaction"] or time.monotonic() > deadline:
            assert session["interaction"], "no interaction stored"
            return session
        time.sleep(0.05)


def national(number: str) -> bytes:
    """The last ten digits: in any form a leaked number could take."""
    return number[-10:].encode()


def assert_called_from_virtual(phone: Phone, virtual: str) -> None:
    invite = phone.invite.parsed()
    assert isinstance(invite, Request)
    assert invite.uri.user == phone.number
    assert invite.from_.uri.user == virtual
    assert invite.to.uri.user == phone.number
    pai = phone.invite.header("P-Asserted-Identity")
    assert pai is not None and f"sip:{virtual}@" in pai
    assert not invite.body, "Veil has no offer of its own: the INVITE must carry no SDP"


def assert_never_saw(phone: Phone, other: str) -> None:
    data = phone.received_bytes()
    assert data
    assert national(other) not in data, f"{other} reached {phone.number}:\n{data.decode()}"


def sdp_lines(body: bytes, prefix: str) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith(prefix)]


def assert_neutral_sdp(body: bytes) -> None:
    assert body
    [origin] = sdp_lines(body, "o=")
    assert origin.split()[0] == "o=-", origin
    assert sdp_lines(body, "s=") == ["s=-"]
    assert not sdp_lines(body, "i="), "the phone's description crossed"


def media(body: bytes) -> tuple[list[str], list[str]]:
    return sdp_lines(body, "c="), sdp_lines(body, "m=")


def origin_of(body: bytes) -> tuple[str, int]:
    [origin] = sdp_lines(body, "o=")
    fields = origin[2:].split()
    return fields[1], int(fields[2])


def test_both_parties_are_called_and_bridged(plane: Plane) -> None:
    session, result = place_call(plane, "bridge")
    result.assert_ok()
    virtual = session["virtual_number"]
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is not None, "party two was never called"
    assert one.invite.header("Call-ID") != two.invite.header("Call-ID")
    # Party one is called first, party two only once party one answered.
    assert one.invite.time <= one.sent(200, cseq="INVITE")[0].time <= two.invite.time

    for phone, other in ((one, two.number), (two, one.number)):
        assert_called_from_virtual(phone, virtual)
        assert_never_saw(phone, other)
        for message in phone.received():
            if message.parsed().body:
                assert_neutral_sdp(message.parsed().body)

    # Party one: its offer answered with a black hole, then party two's offer.
    offer_one = one.sent(200, cseq="INVITE")[0].parsed().body
    [hold_ack, bridge_ack] = sorted(
        {m.raw: m for m in one.received("ACK")}.values(), key=lambda m: m.time
    )
    hold = hold_ack.parsed().body
    assert sdp_lines(hold, "c=") == ["c=IN IP4 0.0.0.0"]
    assert "a=inactive" in sdp_lines(hold, "a=")
    assert sdp_lines(hold, "m=") == sdp_lines(offer_one, "m=")
    [reinvite] = {m.raw: m for m in one.reinvites}.values()
    reoffer = reinvite.parsed().body
    offer_two = two.sent(200, cseq="INVITE")[0].parsed().body
    assert (
        media(reoffer)
        == media(offer_two)
        == (["c=IN IP4 127.0.0.22"], ["m=audio 40200 RTP/AVP 8 101"])
    )
    assert "a=inactive" not in sdp_lines(reoffer, "a=")
    # The re-offer is a new version of the session party one knows (RFC 3264 8).
    hold_id, hold_version = origin_of(hold)
    reoffer_id, reoffer_version = origin_of(reoffer)
    assert reoffer_id == hold_id and reoffer_version > hold_version
    assert reinvite.parsed().cseq[0] > one.invite.parsed().cseq[0]
    assert not bridge_ack.parsed().body

    # Party two: its ACK carries party one's answer to party two's offer.
    [ack_two] = {m.raw: m for m in two.received("ACK")}.values()
    answer_one = one.sent(200, cseq="INVITE")[-1].parsed().body
    assert media(ack_two.parsed().body) == media(answer_one)
    assert media(answer_one) == (["c=IN IP4 127.0.0.11"], ["m=audio 40100 RTP/AVP 8 101"])
    assert ack_two.time >= reinvite.time

    # Party two hung up; Veil hung up party one.
    assert two.sent("BYE") and one.received("BYE")
    assert not two.received("BYE")

    done = ended(plane, session["session_uuid"])
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "completed"
    assert interaction["second_party_status"] == "completed"
    assert interaction["total_call_count"] == 2
    assert done["total_call_count"] == 2
    assert done["total_call_billed_duration"] == 120  # two answered legs, a started minute
    assert done["status"] == "active"


def test_party_two_waits_for_the_answer_when_party_one_is_slow(plane: Plane) -> None:
    """Party one takes 1.2 s to answer the re-INVITE: party two retransmits its 200 in the
    meantime, and Veil must not ACK it before it has party one's answer to put in it."""
    session, result = place_call(plane, "bridge", pause_ms=1200)
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is not None
    assert len(two.sent(200, cseq="INVITE")) > 1, "party two's 200 was not retransmitted"
    acks = two.received("ACK")
    assert acks and all(media(a.parsed().body)[1] == ["m=audio 40100 RTP/AVP 8 101"] for a in acks)
    assert_never_saw(two, one.number)
    [interaction] = ended(plane, session["session_uuid"])["interaction"]
    assert interaction["second_party_status"] == "completed"


def test_party_one_busy_and_party_two_is_never_called(plane: Plane) -> None:
    session, result = place_call(plane, "first_busy", calls=1)
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is None
    assert_called_from_virtual(one, session["virtual_number"])
    assert_never_saw(one, session["second_party"])
    assert one.received("ACK"), "Veil must ACK the 486"
    # Nothing more for the trunk: no INVITE to party two (UDP retransmits would show).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trunk:
        trunk.bind(("127.0.0.1", plane.trunk_port))
        trunk.settimeout(1.2)
        try:
            data, _ = trunk.recvfrom(65535)
        except TimeoutError:
            data = b""
    assert not data, f"the trunk got more: {data.decode(errors='replace')}"

    done = ended(plane, session["session_uuid"])
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "busy"
    assert interaction["second_party_status"] == "not-dialed"
    assert interaction["second_party_resource_url"] is None  # no call was placed
    assert done["total_call_count"] == 1
    assert done["total_call_billed_duration"] == 0
    assert done["status"] == "active"


def test_party_two_busy_hangs_up_party_one(plane: Plane) -> None:
    session, result = place_call(plane, "second_busy")
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is not None
    for phone, other in ((one, two.number), (two, one.number)):
        assert_called_from_virtual(phone, session["virtual_number"])
        assert_never_saw(phone, other)
    assert one.sent(200, cseq="INVITE"), "party one answered"
    [bye] = {m.raw: m for m in one.received("BYE")}.values()
    assert bye.time >= two.sent(486)[0].time
    assert not one.reinvites
    assert two.received("ACK"), "Veil must ACK the 486"

    done = ended(plane, session["session_uuid"])
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "completed"
    assert interaction["second_party_status"] == "busy"
    assert done["total_call_count"] == 2
    assert done["status"] == "active"


def test_party_one_hangs_up_while_party_two_rings(plane: Plane) -> None:
    session, result = place_call(plane, "first_hangs_up")
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is not None
    assert two.received("CANCEL"), "party two kept ringing after party one hung up"
    assert one.received(200, cseq="BYE")
    assert not one.received("BYE") and not one.reinvites
    assert_never_saw(two, one.number)

    done = ended(plane, session["session_uuid"])
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "completed"
    assert interaction["second_party_status"] == "canceled"
    assert done["status"] == "active"


def test_party_one_answering_as_the_ring_timeout_cancels_it_ends_the_call(
    plane: Plane,
) -> None:
    """Party one's 200 crosses Veil's CANCEL (ring timeout, 5 s): Veil ACKs and hangs it
    up, and the call ends (no 487 will come to end it)."""
    session, result = place_call(plane, "first_answers_late", calls=1, ring_timeout=5)
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is None
    assert one.received("CANCEL") and one.received("ACK") and one.received("BYE")
    done = ended(plane, session["session_uuid"])
    [interaction] = done["interaction"]
    assert interaction["first_party_status"] == "no-answer"
    assert done["status"] == "active"


def test_a_second_answer_from_a_forking_party_one_is_acked_and_hung_up(plane: Plane) -> None:
    """Party one's call forks and two phones answer: the first answer is kept, the other
    gets an ACK (RFC 3261 13.2.2.4) and a BYE, and the call goes on with the first."""
    session, result = place_call(plane, "first_forks")
    result.assert_ok()
    one, two = phones(result, session["first_party"], session["second_party"])
    assert two is not None
    kept, other = (m.parsed().to.tag for m in one.sent(200, cseq="INVITE")[:2])
    assert kept != other
    acks = {m.parsed().to.tag: m for m in one.received("ACK")}
    assert {kept, other} <= set(acks)
    [fork_bye, *_] = one.received("BYE")
    assert fork_bye.parsed().to.tag == other
    [reinvite] = {m.raw: m for m in one.reinvites}.values()
    assert reinvite.parsed().to.tag == kept
    assert_never_saw(one, two.number)
    [interaction] = ended(plane, session["session_uuid"])["interaction"]
    assert interaction["first_party_status"] == "completed"
    assert interaction["second_party_status"] == "completed"
