"""Routing inside a masked call's dialogs, and the in-dialog requests Veil relays or
refuses, in raw SIP over UDP sockets.

Python sockets play the inbound trunk's caller (leg A), the callee behind the outbound
trunk (leg B), and record-routing proxies on either side. A proxy here is a real hop:
it takes the requests routed to it, pops its Route entry, puts its Via on top and sends
them on to the Request-URI; it takes the answers and sends them back along the Via.
Every message is written as text and every answer parsed with Veil's ``parse_message``.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.calls.conftest import Plane
from veil.sip.grammar import parse_address, parse_via
from veil.sip.message import Request, Response, parse_message

WAIT = 2.0  # how long an answer that must come may take
QUIET = 0.2  # how long to listen for something that must not come

Address = tuple[str, int]
Fields = list[tuple[str, str]]


def token() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + token()


def sdp(owner: str, port: int, direction: str = "sendrecv") -> bytes:
    """An SDP whose ``o=`` username and ``s=`` name ``owner`` (Veil must neutralise both)."""
    lines = [
        "v=0",
        f"o={owner} 1001 1 IN IP4 127.0.0.1",
        f"s=Call of {owner}",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0",
        f"a={direction}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def assert_neutral_sdp(message: Request | Response, owner: str, direction: str) -> None:
    """``message`` carries ``owner``'s SDP with its origin and name neutralised."""
    assert message.headers.get("Content-Type") == "application/sdp"
    lines = message.body.decode().splitlines()
    assert "o=- 1001 1 IN IP4 127.0.0.1" in lines, lines
    assert "s=-" in lines, lines
    assert f"a={direction}" in lines, lines
    assert owner not in message.body.decode()


def wire(start: str, fields: Fields, body: bytes = b"") -> bytes:
    lines = [start, *(f"{name}: {value}" for name, value in fields)]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def address_of(uri_text: str) -> Address:
    """Where a SIP URI (or name-addr) with a literal address is reached over UDP."""
    uri = parse_address(uri_text).uri
    return uri.host, uri.port or 5060


def describe(message: Request | Response) -> str:
    if isinstance(message, Request):
        return f"{message.method} {message.uri} (CSeq {message.headers.get('CSeq')})"
    return f"{message.status} {message.reason} (CSeq {message.headers.get('CSeq')})"


class Peer:
    """A UDP socket playing one SIP element. Retransmissions (byte-identical datagrams
    already received) are skipped, everything else is checked in order of arrival."""

    def __init__(self, name: str, sock: socket.socket) -> None:
        self.name = name
        self.sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self.address: Address = (self.host, self.port)
        self._seen: set[bytes] = set()
        self.repeated: list[bytes] = []  # the retransmissions skipped

    @property
    def route(self) -> str:
        """The Record-Route / Route value naming this element (a loose router)."""
        return f"<sip:{self.host}:{self.port};lr>"

    def send(self, data: bytes, to: Address) -> None:
        self.sock.sendto(data, to)

    def receive(self, timeout: float = WAIT) -> tuple[Request | Response, Address]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name} received nothing new within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if data in self._seen:
                self.repeated.append(data)
                continue
            self._seen.add(data)
            return parse_message(data), (source[0], source[1])

    def request(self, method: str) -> tuple[Request, Address]:
        message, source = self.receive()
        assert isinstance(message, Request) and message.method == method, (
            f"{self.name} expected {method}, got {describe(message)}"
        )
        return message, source

    def response(self, status: int, method: str) -> Response:
        message, _ = self.receive()
        assert isinstance(message, Response), f"{self.name} expected {status}: {describe(message)}"
        assert (message.status, message.cseq[1]) == (status, method), (
            f"{self.name} expected {status} to {method}, got {describe(message)}"
        )
        return message

    def final(self, status: int, method: str) -> Response:
        """The final response to a request, after any 100 Trying."""
        message, _ = self.receive()
        if isinstance(message, Response) and message.status == 100:
            message, _ = self.receive()
        assert isinstance(message, Response), f"{self.name} expected {status}: {describe(message)}"
        assert (message.status, message.cseq[1]) == (status, method), (
            f"{self.name} expected {status} to {method}, got {describe(message)}"
        )
        return message

    def nothing(self, seconds: float = QUIET) -> None:
        """Nothing new arrives for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                return
            if data in self._seen:
                self.repeated.append(data)
            else:
                raise AssertionError(f"{self.name} received {describe(parse_message(data))}")

    def reply(
        self,
        request: Request,
        source: Address,
        status: int,
        reason: str,
        *,
        tag: str | None = None,
        fields: Fields | None = None,
        body: bytes = b"",
    ) -> None:
        """A response to ``request`` (RFC 3261 8.2.6.2), sent back where it came from."""
        to = request.headers.get("To") or ""
        if tag and request.to.tag is None:
            to += f";tag={tag}"
        head: Fields = [("Via", via) for via in request.headers.raw_values("Via")]
        head += [
            ("From", request.headers.get("From") or ""),
            ("To", to),
            ("Call-ID", request.call_id),
            ("CSeq", request.headers.get("CSeq") or ""),
            *(fields or []),
        ]
        self.send(wire(f"SIP/2.0 {status} {reason}", head, body), source)


class Proxy(Peer):
    """A stateless record-routing proxy (RFC 3261 16.11, loose routing)."""

    def relay_request(self, method: str) -> tuple[Request, Address]:
        """The next request, which must be routed through us; passed on to its
        Request-URI with our Route entry popped and our Via on top. Returns it as it
        arrived, and where it came from."""
        request, source = self.request(method)
        arrived = parse_message(bytes(request))
        assert isinstance(arrived, Request)
        routes = request.headers.values("Route")
        assert routes, f"{method} reached {self.name} without a Route"
        assert parse_address(routes[0]).uri == parse_address(self.route).uri, routes
        request.headers.remove("Route")
        for route in routes[1:]:
            request.headers.add("Route", route)
        request.headers.prepend("Via", f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()}")
        self.send(bytes(request), address_of(str(request.uri)))
        return arrived, source

    def relay_response(self, status: int, method: str) -> None:
        """The next response, which must carry our Via on top; sent to the next Via."""
        response = self.response(status, method)
        vias = response.headers.values("Via")
        ours = parse_via(vias[0])
        assert (ours.host, ours.port) == (self.host, self.port), vias
        after = parse_via(vias[1])
        host = after.params.get("received") or after.host
        port = int(after.params.get("rport") or after.port or 5060)
        response.headers.remove("Via")
        for via in reversed(vias[1:]):
            response.headers.prepend("Via", via)
        self.send(bytes(response), (host, port))


@dataclass
class Side:
    """One party's view of its dialog with Veil: what it needs to send requests in it."""

    peer: Peer
    call_id: str
    local: str  # our From for requests, with our tag
    remote: str  # their To, with Veil's tag
    target: str  # Veil's Contact URI: the Request-URI
    routes: list[str]  # the route set, in order
    contact: str
    cseq: int

    @property
    def first_hop(self) -> Address:
        return address_of(self.routes[0] if self.routes else self.target)

    def build(
        self, method: str, *, cseq: int | None = None, body: bytes = b"", branch: str = ""
    ) -> bytes:
        """A request in the dialog (RFC 3261 12.2.1.1); CSeq advances unless given."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        sent_by = f"{self.peer.host}:{self.peer.port}"
        fields: Fields = [
            ("Via", f"SIP/2.0/UDP {sent_by};branch={branch or new_branch()};rport"),
            *(("Route", route) for route in self.routes),
            ("Max-Forwards", "70"),
            ("From", self.local),
            ("To", self.remote),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if method in ("INVITE", "UPDATE"):
            fields.append(("Contact", self.contact))
        return wire(f"{method} {self.target} SIP/2.0", fields, body)

    def send(
        self, method: str, *, cseq: int | None = None, body: bytes = b"", branch: str = ""
    ) -> None:
        self.peer.send(self.build(method, cseq=cseq, body=body, branch=branch), self.first_hop)


@dataclass
class Call:
    caller_number: str
    callee_number: str
    virtual: str
    a: Side  # the caller's side of leg A
    b: Side  # the callee's side of leg B
    ringing: Response  # Veil's 180 to the caller
    answer: Response  # Veil's 200 to the caller
    invite_b: Request  # Veil's INVITE to the callee
    ack_b: Request  # Veil's ACK to the callee, as it left Veil


@contextlib.contextmanager
def udp(name: str, port: int = 0) -> Iterator[Peer]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        yield Peer(name, sock)


@contextlib.contextmanager
def proxy(name: str) -> Iterator[Proxy]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield Proxy(name, sock)


@contextlib.contextmanager
def phones(plane: Plane) -> Iterator[tuple[Peer, Peer]]:
    """The caller (any port) and the callee (at the outbound trunk's port). Afterwards,
    Veil logged no error while they talked."""
    log_start = len(plane.server.log())
    with udp("caller") as caller, udp("callee", plane.trunk_port) as callee:
        yield caller, callee
    log = plane.server.log()[log_start:]
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log


def establish(
    plane: Plane,
    caller: Peer,
    callee: Peer,
    *,
    a_proxy: Proxy | None = None,
    b_proxy: Proxy | None = None,
) -> Call:
    """A call from the caller to the callee through the virtual number, answered and
    acknowledged on both legs. ``a_proxy`` record-routed the caller's INVITE;
    ``b_proxy`` record-routes the callee's 200 (and then carries leg B's requests)."""
    session = plane.session()
    caller_number, callee_number = session["first_party"], session["second_party"]
    virtual = session["virtual_number"]
    host, port = plane.sip_address
    a_tag, b_tag = token(), token()
    a_call_id = f"{token()}@{caller_number}"
    a_from = f"<sip:{caller_number}@127.0.0.1>;tag={a_tag}"
    a_contact = f"<sip:caller@127.0.0.1:{caller.port}>"
    fields: Fields = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:{caller.port};branch={new_branch()};rport"),
        ("Max-Forwards", "70"),
    ]
    if a_proxy is not None:
        fields.append(("Record-Route", a_proxy.route))
    fields += [
        ("From", a_from),
        ("To", f"<sip:{virtual}@{host}:{port}>"),
        ("Call-ID", a_call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", a_contact),
    ]
    offer = sdp(f"caller{caller_number}", 40000)
    caller.send(
        wire(f"INVITE sip:{virtual}@{host}:{port} SIP/2.0", fields, offer), plane.sip_address
    )
    caller.response(100, "INVITE")

    invite_b, source = callee.request("INVITE")
    b_contact = f"<sip:callee@127.0.0.1:{plane.trunk_port}>"
    answer_fields: Fields = [("Contact", b_contact)]
    if b_proxy is not None:
        answer_fields.append(("Record-Route", b_proxy.route))
    callee.reply(invite_b, source, 180, "Ringing", tag=b_tag, fields=answer_fields)
    callee.reply(
        invite_b,
        source,
        200,
        "OK",
        tag=b_tag,
        fields=answer_fields,
        body=sdp(f"callee{callee_number}", 50000),
    )
    if b_proxy is None:
        ack_b, _ = callee.request("ACK")
    else:
        ack_b, ack_source = b_proxy.relay_request("ACK")
        assert ack_source == plane.sip_address
        _, hop = callee.request("ACK")
        assert hop == b_proxy.address

    ringing = caller.response(180, "INVITE")
    answer = caller.response(200, "INVITE")
    assert answer.contact is not None
    assert_neutral_sdp(answer, f"callee{callee_number}", "sendrecv")
    a = Side(
        peer=caller,
        call_id=a_call_id,
        local=a_from,
        remote=answer.headers.get("To") or "",
        target=str(answer.contact.uri),
        routes=list(reversed(answer.headers.values("Record-Route"))),  # 12.1.2
        contact=a_contact,
        cseq=1,
    )
    a.send("ACK", cseq=1)
    if a_proxy is not None:
        a_proxy.relay_request("ACK")

    assert invite_b.contact is not None
    b = Side(
        peer=callee,
        call_id=invite_b.call_id,
        local=f"{invite_b.headers.get('To')};tag={b_tag}",
        remote=invite_b.headers.get("From") or "",
        target=str(invite_b.contact.uri),
        # 12.1.1: the callee's route set is the Record-Route it answered with.
        routes=[b_proxy.route] if b_proxy is not None else [],
        contact=b_contact,
        cseq=0,
    )
    return Call(caller_number, callee_number, virtual, a, b, ringing, answer, invite_b, ack_b)


def hang_up(call: Call) -> None:
    """The caller hangs up a call without proxies; both legs end."""
    call.a.send("BYE")
    call.a.peer.final(200, "BYE")
    bye, source = call.b.peer.request("BYE")
    call.b.peer.reply(bye, source, 200, "OK")


# -- Record-Route


def test_a_proxy_on_the_callers_trunk_stays_on_the_path(plane: Plane) -> None:
    """RFC 3261 12.1.1: the Record-Route of the caller's INVITE comes back in Veil's 180
    and 200, and Veil's own requests on leg A (its BYE when the callee hangs up) go to
    that proxy, loose-routed. Leg B's INVITE carries nothing of it."""
    with phones(plane) as (caller, callee), proxy("proxy A") as edge:
        call = establish(plane, caller, callee, a_proxy=edge)

        assert call.ringing.headers.raw_values("Record-Route") == [edge.route]
        assert call.answer.headers.raw_values("Record-Route") == [edge.route]
        assert call.ringing.to.tag and call.ringing.to.tag == call.answer.to.tag

        text = bytes(call.invite_b).decode()
        assert "Record-Route" not in call.invite_b.headers
        assert "Route" not in call.invite_b.headers
        assert f"127.0.0.1:{edge.port}" not in text
        assert call.caller_number[-10:] not in text
        assert call.invite_b.call_id != call.a.call_id

        # The callee hangs up; Veil's BYE to the caller goes through the proxy.
        call.b.send("BYE")
        callee.final(200, "BYE")
        bye, source = edge.relay_request("BYE")
        assert source == plane.sip_address
        assert str(bye.uri) == f"sip:caller@127.0.0.1:{caller.port}"
        assert bye.headers.raw_values("Route") == [edge.route]
        assert bye.call_id == call.a.call_id
        assert bye.from_.tag == call.answer.to.tag
        assert bye.to.tag == parse_address(call.a.local).tag

        relayed, hop = caller.request("BYE")
        assert hop == edge.address  # never straight from Veil to the caller's Contact
        assert "Route" not in relayed.headers
        caller.reply(relayed, hop, 200, "OK")
        edge.relay_response(200, "BYE")
        # Past T1: the ACK the proxy passed on reached Veil (no 200 retransmission), and
        # so did the 200 to its BYE (no BYE retransmission).
        caller.nothing(0.6)
        edge.nothing()
        assert caller.repeated == [] and edge.repeated == []


def test_a_proxy_on_the_callees_trunk_stays_on_the_path(plane: Plane) -> None:
    """RFC 3261 12.1.2: the Record-Route of the callee's 200 makes Veil's route set on
    leg B, reversed: its ACK and later BYE go to that proxy with a Route header. The
    caller never sees that proxy."""
    with phones(plane) as (caller, callee), proxy("proxy B") as edge:
        call = establish(plane, caller, callee, b_proxy=edge)

        contact = f"sip:callee@127.0.0.1:{plane.trunk_port}"
        assert str(call.ack_b.uri) == contact
        assert call.ack_b.headers.raw_values("Route") == [edge.route]
        assert call.ack_b.cseq == (1, "ACK")
        for response in (call.ringing, call.answer):
            assert "Record-Route" not in response.headers
            assert f"127.0.0.1:{edge.port}" not in bytes(response).decode()

        # The caller hangs up; Veil's BYE to the callee goes through the proxy.
        call.a.send("BYE")
        caller.final(200, "BYE")
        bye, source = edge.relay_request("BYE")
        assert source == plane.sip_address
        assert str(bye.uri) == contact
        assert bye.headers.raw_values("Route") == [edge.route]
        assert bye.call_id == call.invite_b.call_id
        assert bye.cseq == (2, "BYE")

        relayed, hop = callee.request("BYE")
        assert hop == edge.address
        callee.reply(relayed, hop, 200, "OK")
        edge.relay_response(200, "BYE")
        edge.nothing()
        callee.nothing()


# -- UPDATE


def test_update_is_relayed_both_ways(plane: Plane) -> None:
    """RFC 3311 UPDATE inside the call, first from the caller, then from the callee:
    the offer and the answer cross with neutralised SDP, in the other leg's dialog."""
    with phones(plane) as (caller, callee):
        call = establish(plane, caller, callee)
        owner_a, owner_b = f"caller{call.caller_number}", f"callee{call.callee_number}"

        call.a.send("UPDATE", body=sdp(owner_a, 40002, "sendonly"))
        update, source = callee.request("UPDATE")
        assert str(update.uri) == f"sip:callee@127.0.0.1:{plane.trunk_port}"
        assert update.call_id == call.invite_b.call_id
        assert update.from_.tag == call.invite_b.from_.tag
        assert update.to.tag == parse_address(call.b.local).tag
        assert update.cseq == (2, "UPDATE")
        assert update.contact is not None
        assert_neutral_sdp(update, owner_a, "sendonly")
        assert call.caller_number[-10:] not in bytes(update).decode()
        callee.reply(
            update,
            source,
            200,
            "OK",
            fields=[("Contact", call.b.contact)],
            body=sdp(owner_b, 50002, "recvonly"),
        )
        ok = caller.final(200, "UPDATE")
        assert_neutral_sdp(ok, owner_b, "recvonly")
        assert ok.contact is not None
        assert call.callee_number[-10:] not in bytes(ok).decode()

        call.b.send("UPDATE", body=sdp(owner_b, 50004, "sendonly"))
        update, source = caller.request("UPDATE")
        assert str(update.uri) == f"sip:caller@127.0.0.1:{caller.port}"
        assert update.call_id == call.a.call_id
        assert update.from_.tag == call.answer.to.tag
        assert update.to.tag == parse_address(call.a.local).tag
        assert update.cseq == (1, "UPDATE")
        assert_neutral_sdp(update, owner_b, "sendonly")
        assert call.callee_number[-10:] not in bytes(update).decode()
        caller.reply(
            update,
            source,
            200,
            "OK",
            fields=[("Contact", call.a.contact)],
            body=sdp(owner_a, 40004, "recvonly"),
        )
        ok = callee.final(200, "UPDATE")
        assert_neutral_sdp(ok, owner_a, "recvonly")

        hang_up(call)


# -- what Veil refuses


def test_a_reinvite_crossing_a_pending_one_gets_491(plane: Plane) -> None:
    """Glare (RFC 3261 14.1): while the caller's re-INVITE waits for the callee, the
    callee's own re-INVITE gets 491. Once the first completes, the retry goes through."""
    with phones(plane) as (caller, callee):
        call = establish(plane, caller, callee)
        owner_a, owner_b = f"caller{call.caller_number}", f"callee{call.callee_number}"

        call.a.send("INVITE", body=sdp(owner_a, 40002, "sendonly"))
        caller.response(100, "INVITE")
        pending, pending_source = callee.request("INVITE")
        assert_neutral_sdp(pending, owner_a, "sendonly")

        branch = new_branch()
        call.b.send("INVITE", body=sdp(owner_b, 50002, "sendonly"), branch=branch)
        refused = callee.final(491, "INVITE")
        assert refused.to.tag == call.invite_b.from_.tag
        # The ACK for a non-2xx final response: same branch and CSeq (17.1.1.3).
        call.b.send("ACK", cseq=call.b.cseq, branch=branch)
        caller.nothing()  # the crossing re-INVITE was not relayed

        callee.reply(
            pending,
            pending_source,
            200,
            "OK",
            fields=[("Contact", call.b.contact)],
            body=sdp(owner_b, 50004, "recvonly"),
        )
        ack, _ = callee.request("ACK")
        assert ack.cseq == (pending.cseq[0], "ACK")
        ok = caller.final(200, "INVITE")
        assert_neutral_sdp(ok, owner_b, "recvonly")
        call.a.send("ACK", cseq=call.a.cseq)

        # The callee's retry (a new transaction, a higher CSeq) is relayed now.
        call.b.send("INVITE", body=sdp(owner_b, 50006, "sendonly"))
        callee.response(100, "INVITE")
        retry, source = caller.request("INVITE")
        assert_neutral_sdp(retry, owner_b, "sendonly")
        caller.reply(
            retry,
            source,
            200,
            "OK",
            fields=[("Contact", call.a.contact)],
            body=sdp(owner_a, 40006, "recvonly"),
        )
        caller.request("ACK")
        callee.final(200, "INVITE")
        call.b.send("ACK", cseq=call.b.cseq)

        hang_up(call)


def test_a_second_offer_from_the_same_side_while_one_is_pending_gets_500(plane: Plane) -> None:
    """No glare: the caller's own re-INVITE is still unanswered when it sends another
    re-INVITE, then an UPDATE with an offer. RFC 3261 14.2 (and RFC 3311 5.2) want 500
    with a Retry-After of 0 to 10 s, and neither is relayed."""
    with phones(plane) as (caller, callee):
        call = establish(plane, caller, callee)
        owner_a, owner_b = f"caller{call.caller_number}", f"callee{call.callee_number}"

        call.a.send("INVITE", body=sdp(owner_a, 40002, "sendonly"))
        caller.response(100, "INVITE")
        pending, pending_source = callee.request("INVITE")
        first = call.a.cseq

        branch = new_branch()
        call.a.send("INVITE", body=sdp(owner_a, 40004, "inactive"), branch=branch)
        refused = caller.final(500, "INVITE")
        assert (refused.headers.get("Retry-After") or "x").isdigit()
        assert 0 <= int(refused.headers.get("Retry-After") or "-1") <= 10
        call.a.send("ACK", cseq=call.a.cseq, branch=branch)
        call.a.send("UPDATE", body=sdp(owner_a, 40006, "inactive"))
        refused = caller.final(500, "UPDATE")
        assert 0 <= int(refused.headers.get("Retry-After") or "-1") <= 10
        callee.nothing()

        callee.reply(
            pending,
            pending_source,
            200,
            "OK",
            fields=[("Contact", call.b.contact)],
            body=sdp(owner_b, 50004, "recvonly"),
        )
        callee.request("ACK")
        ok = caller.final(200, "INVITE")
        assert ok.cseq == (first, "INVITE")
        call.a.send("ACK", cseq=first)

        # Answered: the next offer goes through.
        call.a.send("UPDATE", body=sdp(owner_a, 40008, "inactive"))
        update, source = callee.request("UPDATE")
        assert_neutral_sdp(update, owner_a, "inactive")
        callee.reply(update, source, 200, "OK", body=sdp(owner_b, 50006, "inactive"))
        caller.final(200, "UPDATE")

        hang_up(call)


def test_an_in_dialog_request_with_a_lower_cseq_gets_500(plane: Plane) -> None:
    """RFC 3261 12.2.2: a request whose CSeq is lower than the last one in the dialog is
    out of order: 500, and nothing is relayed. Checked on both legs."""
    with phones(plane) as (caller, callee):
        call = establish(plane, caller, callee)

        call.a.send("INFO", cseq=10)
        info, source = callee.request("INFO")
        callee.reply(info, source, 200, "OK")
        caller.final(200, "INFO")
        call.a.send("INFO", cseq=5)
        caller.final(500, "INFO")
        callee.nothing()

        call.b.send("INFO", cseq=7)
        info, source = caller.request("INFO")
        caller.reply(info, source, 200, "OK")
        callee.final(200, "INFO")
        call.b.send("INFO", cseq=3)
        callee.final(500, "INFO")
        caller.nothing()

        # The call is still up: a request in order goes through.
        call.a.cseq = 10
        hang_up(call)


# -- lost ACKs


def test_a_retransmitted_answer_is_acknowledged_again_even_after_the_call(plane: Plane) -> None:
    """RFC 3261 13.2.2.4: the callee retransmits its 200 until an ACK arrives; each
    retransmission gets the same ACK again, also once the call has ended (the ACK may
    have been lost just before the caller hung up)."""
    with phones(plane) as (caller, callee):
        call = establish(plane, caller, callee)

        def retransmit_answer() -> None:
            callee.reply(
                call.invite_b,
                ("127.0.0.1", plane.sip_address[1]),
                200,
                "OK",
                tag=parse_address(call.b.local).tag,
                fields=[("Contact", f"<sip:callee@127.0.0.1:{plane.trunk_port}>")],
                body=sdp(f"callee{call.callee_number}", 50000),
            )

        retransmit_answer()
        callee.nothing(0.3)
        assert callee.repeated, "no ACK for the retransmitted 200"
        again = parse_message(callee.repeated[-1])
        assert isinstance(again, Request) and again.method == "ACK"
        assert again.call_id == call.invite_b.call_id and again.cseq[0] == 1
        # (``repeated`` holds only byte-identical copies: it is the same ACK.)

        hang_up(call)
        callee.repeated.clear()
        retransmit_answer()
        callee.nothing(0.3)
        assert [parse_message(d).cseq[1] for d in callee.repeated] == ["ACK"]
        assert caller.repeated == []
