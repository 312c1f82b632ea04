"""SIP dialogs (RFC 3261 section 12): creation on both sides, requests inside a dialog,
CSeq ordering and target refresh."""

from __future__ import annotations

import pytest

from veil.sip.dialog import Dialog, new_call_id, new_tag
from veil.sip.grammar import parse_address, parse_uri
from veil.sip.message import Request, Response, parse_message

# The INVITE went Alice -> p1 -> p2 -> Bob; each proxy put its Record-Route on top.
INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.2:5060;branch=z9hG4bK-p2\r\n"
    "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-p1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-alice\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "Max-Forwards: 68\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=alice-tag\r\n'
    "To: Bob <sip:bob@example.com>\r\n"
    "Call-ID: dialog-call-1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.1:5060>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)

OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-alice\r\n"
    "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=alice-tag\r\n'
    "To: Bob <sip:bob@example.com>;tag=bob-tag\r\n"
    "Call-ID: dialog-call-1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.30:5070;transport=tcp>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def parse_request(text: str) -> Request:
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def parse_response(text: str) -> Response:
    message = parse_message(text.encode())
    assert isinstance(message, Response)
    return message


def reparse(request: Request) -> Request:
    """The request as the far end reads it off the wire."""
    message = parse_message(bytes(request))
    assert isinstance(message, Request)
    return message


def uac() -> Dialog:
    return Dialog.as_uac(parse_request(INVITE), parse_response(OK))


def uas() -> Dialog:
    return Dialog.as_uas(parse_request(INVITE), "bob-tag")


def in_dialog(method: str, cseq: int, *, contact: str | None = None) -> Request:
    """A request Alice sends to Bob inside the dialog."""
    return parse_request(
        f"{method} sip:bob@192.0.2.30:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-{method}-{cseq}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=alice-tag\r\n"
        "To: <sip:bob@example.com>;tag=bob-tag\r\n"
        "Call-ID: dialog-call-1\r\n"
        f"CSeq: {cseq} {method}\r\n" + (f"Contact: {contact}\r\n" if contact else "") + "\r\n"
    )


def test_uac_dialog_from_invite_and_2xx() -> None:
    dialog = uac()
    assert dialog.call_id == "dialog-call-1"
    assert dialog.local_tag == "alice-tag"
    assert dialog.remote_tag == "bob-tag"
    assert dialog.key == ("dialog-call-1", "alice-tag", "bob-tag")
    assert dialog.local.uri == parse_uri("sip:alice@example.com")
    assert dialog.local.display == "Alice"
    assert dialog.local.tag is None
    assert dialog.remote.uri == parse_uri("sip:bob@example.com")
    assert dialog.remote.tag is None
    assert dialog.remote_target == parse_uri("sip:bob@192.0.2.30:5070;transport=tcp")
    # 12.1.2: the UAC's route set is the Record-Route in reverse order.
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert dialog.next_hop() == parse_uri("sip:p1.example.com;lr")
    assert dialog.local_seq == 10
    assert dialog.remote_seq is None


def test_uac_dialog_without_contact_or_record_route() -> None:
    ok = OK.replace("Contact: <sip:bob@192.0.2.30:5070;transport=tcp>\r\n", "").replace(
        "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n", ""
    )
    dialog = Dialog.as_uac(parse_request(INVITE), parse_response(ok))
    assert dialog.route_set == []
    assert dialog.remote_target == parse_uri("sip:bob@example.com")
    assert dialog.next_hop() == dialog.remote_target


def test_uas_dialog_from_invite() -> None:
    dialog = uas()
    assert dialog.key == ("dialog-call-1", "bob-tag", "alice-tag")
    assert dialog.local.uri == parse_uri("sip:bob@example.com")
    assert dialog.local.display == "Bob"
    assert dialog.remote.uri == parse_uri("sip:alice@example.com")
    assert dialog.remote.tag is None
    assert dialog.remote_target == parse_uri("sip:alice@192.0.2.1:5060")
    # 12.1.1: the UAS keeps the Record-Route order.
    assert dialog.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert dialog.next_hop() == parse_uri("sip:p2.example.com;lr")
    assert dialog.remote_seq == 10
    assert dialog.local_seq == 0


def test_in_dialog_requests_advance_cseq_and_carry_tags_and_loose_routes() -> None:
    dialog = uac()
    bye = reparse(dialog.request("BYE"))
    assert bye.method == "BYE"
    assert bye.cseq == (11, "BYE")
    assert dialog.local_seq == 11
    # Loose routing: the Request-URI is the remote target, the route set goes in Route.
    assert bye.uri == parse_uri("sip:bob@192.0.2.30:5070;transport=tcp")
    assert bye.headers.values("Route") == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
    ]
    assert bye.from_.tag == "alice-tag"
    assert bye.from_.uri == parse_uri("sip:alice@example.com")
    assert bye.to.tag == "bob-tag"
    assert bye.to.uri == parse_uri("sip:bob@example.com")
    assert bye.call_id == "dialog-call-1"
    assert bye.headers.get("Max-Forwards") == "70"
    branch = bye.top_via.branch
    assert branch is not None and branch.startswith("z9hG4bK")
    assert bye.headers.get("Contact") is None  # only target-refresh requests carry one

    info = reparse(
        dialog.request(
            "INFO",
            body=b"Signal=5\r\n",
            content_type="application/dtmf-relay",
            extra=[("X-Trace", "abc")],
        )
    )
    assert info.cseq == (12, "INFO")
    assert info.top_via.branch != branch  # every request is a new transaction
    assert info.body == b"Signal=5\r\n"
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.headers.get("X-Trace") == "abc"

    reinvite = reparse(dialog.request("INVITE", contact="<sip:alice@192.0.2.1:5060>"))
    assert reinvite.cseq == (13, "INVITE")
    assert reinvite.contact == parse_address("<sip:alice@192.0.2.1:5060>")


def test_uas_requests_start_their_own_sequence() -> None:
    dialog = uas()
    bye = reparse(dialog.request("BYE"))
    assert bye.cseq == (1, "BYE")
    assert bye.from_.tag == "bob-tag"
    assert bye.to.tag == "alice-tag"
    assert bye.uri == parse_uri("sip:alice@192.0.2.1:5060")
    assert bye.headers.values("Route") == [
        "<sip:p2.example.com;lr>",
        "<sip:p1.example.com;lr>",
    ]
    assert dialog.remote_seq == 10  # our requests do not touch the remote sequence


def test_strict_routing_when_the_first_route_lacks_lr() -> None:
    ok = OK.replace(
        "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
        "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;maddr=198.51.100.1>",
    )
    dialog = Dialog.as_uac(parse_request(INVITE), parse_response(ok))
    assert dialog.next_hop() == parse_uri("sip:p1.example.com;maddr=198.51.100.1")
    bye = reparse(dialog.request("BYE"))
    # 12.2.1.1: the first route becomes the Request-URI; the remote target goes last.
    assert bye.uri == parse_uri("sip:p1.example.com;maddr=198.51.100.1")
    assert bye.headers.values("Route") == [
        "<sip:p2.example.com;lr>",
        "<sip:bob@192.0.2.30:5070;transport=tcp>",
    ]


def test_loose_routing_only_looks_at_the_first_route() -> None:
    ok = OK.replace(
        "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
        "Record-Route: <sip:p2.example.com>, <sip:p1.example.com;lr>",
    )
    dialog = Dialog.as_uac(parse_request(INVITE), parse_response(ok))
    bye = reparse(dialog.request("BYE"))
    assert bye.uri == dialog.remote_target
    assert bye.headers.values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com>"]


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_keep_the_given_cseq(method: str) -> None:
    dialog = uac()
    request = reparse(dialog.request(method, cseq=10))
    assert request.cseq == (10, method)
    assert dialog.local_seq == 10
    assert request.to.tag == "bob-tag"
    assert reparse(dialog.request("BYE")).cseq == (11, "BYE")


def test_accepts_rejects_lower_or_equal_cseq() -> None:
    dialog = uas()  # remote sequence 10, from the INVITE
    assert dialog.accepts(in_dialog("INFO", 9)) is False
    assert dialog.accepts(in_dialog("INVITE", 10)) is False
    assert dialog.remote_seq == 10
    assert dialog.accepts(in_dialog("INFO", 11)) is True
    assert dialog.remote_seq == 11
    assert dialog.accepts(in_dialog("INFO", 11)) is False
    assert dialog.accepts(in_dialog("BYE", 30)) is True  # gaps are allowed
    assert dialog.remote_seq == 30
    assert dialog.accepts(in_dialog("INFO", 12)) is False
    # ACK and CANCEL carry the INVITE's number.
    assert dialog.accepts(in_dialog("ACK", 10)) is True
    assert dialog.accepts(in_dialog("CANCEL", 10)) is True
    assert dialog.remote_seq == 30


def test_accepts_sets_an_empty_remote_sequence() -> None:
    dialog = uac()  # the UAC has no remote sequence until Bob sends a request
    assert dialog.remote_seq is None
    assert dialog.accepts(in_dialog("BYE", 1)) is True  # far below our own 10
    assert dialog.remote_seq == 1
    assert dialog.accepts(in_dialog("BYE", 1)) is False


def test_refresh_target_follows_a_new_contact() -> None:
    dialog = uas()
    reinvite = in_dialog("INVITE", 11, contact="<sip:alice@203.0.113.9:5080;transport=tcp>")
    assert dialog.accepts(reinvite)
    dialog.refresh_target(reinvite)
    assert dialog.remote_target == parse_uri("sip:alice@203.0.113.9:5080;transport=tcp")
    bye = reparse(dialog.request("BYE"))
    assert bye.uri == parse_uri("sip:alice@203.0.113.9:5080;transport=tcp")

    dialog.refresh_target(in_dialog("UPDATE", 12))  # no Contact: the target stays
    assert dialog.remote_target == parse_uri("sip:alice@203.0.113.9:5080;transport=tcp")

    # A 2xx to our re-INVITE refreshes it as well.
    ok = parse_response(OK.replace("sip:bob@192.0.2.30:5070;transport=tcp", "sip:x@192.0.2.77"))
    dialog.refresh_target(ok)
    assert dialog.remote_target == parse_uri("sip:x@192.0.2.77")


def test_dialog_with_a_peer_that_sends_no_tag() -> None:
    # RFC 3261 12.1.1: a From without tag (RFC 2543 peers) gives an empty remote tag;
    # requests must still be well-formed, with no empty tag parameter.
    invite = parse_request(INVITE.replace(";tag=alice-tag", ""))
    dialog = Dialog.as_uas(invite, "bob-tag")
    assert dialog.remote_tag == ""
    bye = reparse(dialog.request("BYE"))
    assert bye.to.tag is None
    assert bye.to.uri == parse_uri("sip:alice@example.com")
    assert bye.from_.tag == "bob-tag"


def test_new_tags_and_call_ids_are_random() -> None:
    assert len({new_tag() for _ in range(50)}) == 50
    call_ids = {new_call_id() for _ in range(50)}
    assert len(call_ids) == 50
    assert all("@" not in c and len(c) >= 32 for c in call_ids)
