"""Veil's SIP endpoint at its edges, spoken to in raw SIP from Python sockets (UDP and TCP).

Each test writes requests byte by byte, the way a trunk (or something that is not one)
would, and checks the exact answer: status line and every header field. Responses are
parsed with Veil's own ``parse_message``; a To tag Veil adds is compared as ``;tag=*``.
"""

from __future__ import annotations

import contextlib
import random
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from tests.calls.conftest import Plane
from tests.utils import party_number
from veil.sip.grammar import TOKEN
from veil.sip.message import Request, Response, StreamFramer, parse_message, response_to

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
WAIT = 2.0  # how long an answer that must come may take
QUIET = 0.5  # how long to listen for something that must not come
ADDED_TAG = ";tag=*"  # a To tag Veil added, in ``shape``

Headers = list[tuple[str, str]]


def token() -> str:
    return secrets.token_hex(6)


@dataclass
class Req:
    """A request as a trunk writes it; ``bytes(req)`` is what goes on the wire."""

    method: str
    uri: str
    sent_by: str
    transport: str = "UDP"
    branch: str = field(default_factory=lambda: "z9hG4bK" + token())
    call_id: str = field(default_factory=lambda: token() + "@edge.test")
    from_: str = field(default_factory=lambda: f"<sip:{party_number()}@127.0.0.1>;tag={token()}")
    to: str = "<sip:edge@127.0.0.1>"
    cseq: int = 1
    max_forwards: str | None = "70"
    extra: Headers = field(default_factory=list)
    body: bytes = b""
    version: str = "SIP/2.0"
    content_length: bool = True

    @property
    def via(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by};branch={self.branch};rport"

    def headers(self) -> Headers:
        headers = [("Via", self.via)]
        if self.max_forwards is not None:
            headers.append(("Max-Forwards", self.max_forwards))
        headers += [
            ("From", self.from_),
            ("To", self.to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {self.method}"),
            *self.extra,
        ]
        if self.content_length:
            headers.append(("Content-Length", str(len(self.body))))
        return headers

    def __bytes__(self) -> bytes:
        lines = [f"{self.method} {self.uri} {self.version}"]
        lines += [f"{name}: {value}" for name, value in self.headers()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def ack(self, to: str) -> Req:
        """The ACK for a non-2xx final response (RFC 3261 17.1.1.3): same branch."""
        return replace(self, method="ACK", to=to, extra=[], body=b"")

    def stamped_via(self, rport: int, received: str | None = None) -> str:
        """Our Via as RFC 3261 18.2.1 and RFC 3581 want it back."""
        via = f"SIP/2.0/{self.transport} {self.sent_by};branch={self.branch};rport={rport}"
        return via + (f";received={received}" if received else "")

    def echoed(self, via: str, *extra: tuple[str, str], tag_added: bool = True) -> Headers:
        """The header fields of a response to this request (RFC 3261 8.2.6.2), then
        ``extra``, then Content-Length: 0."""
        to = self.to + ADDED_TAG if tag_added else self.to
        return [
            ("Via", via),
            ("From", self.from_),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {self.method}"),
            *extra,
            ("Content-Length", "0"),
        ]


def answer(status: int, reason: str, headers: Headers) -> list[str]:
    """A response as lines (status line, then fields): what ``shape`` gives."""
    return [f"SIP/2.0 {status} {reason}", *(f"{name}: {value}" for name, value in headers)]


def shape(response: Response, request: Req) -> list[str]:
    """Status line and header fields, one line each, with a To tag Veil added written
    ``;tag=*``."""
    headers: Headers = []
    for name, value in response.headers:
        if name == "To" and ";tag=" not in request.to and value.startswith(request.to + ";tag="):
            tag = value[len(request.to) + len(";tag=") :]
            if TOKEN.fullmatch(tag):
                value = request.to + ADDED_TAG
        headers.append((name, value))
    return answer(response.status, response.reason, headers)


def to_tag(response: Response) -> str:
    tag = response.to.tag
    assert tag, f"no To tag in {response.headers.get('To')!r}"
    return tag


def parse_response(data: bytes, *, stream: bool = False) -> Response:
    message = parse_message(data, stream=stream)
    assert isinstance(message, Response), f"not a response: {data!r}"
    return message


class UdpPeer:
    """A UDP socket talking to Veil's SIP port."""

    def __init__(self, sock: socket.socket, veil: tuple[str, int]) -> None:
        self.sock = sock
        self.veil = veil
        self.host, self.port = sock.getsockname()[:2]

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, data: bytes | Req) -> None:
        self.sock.sendto(bytes(data), self.veil)

    def receive_raw(self, timeout: float = WAIT) -> bytes:
        self.sock.settimeout(timeout)
        data, source = self.sock.recvfrom(65535)
        assert source == self.veil, f"a datagram from {source}"
        return data

    def receive(self, timeout: float = WAIT) -> Response:
        return parse_response(self.receive_raw(timeout))

    def final(self, timeout: float = WAIT) -> Response:
        """The next final response; provisional ones before it must be 100 Trying."""
        while True:
            response = self.receive(timeout)
            if response.status >= 200:
                return response
            assert response.status == 100, response

    def listen(self, seconds: float) -> list[bytes]:
        """Every datagram arriving within ``seconds``."""
        got: list[bytes] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recvfrom(65535)[0])
            except TimeoutError:
                break
        return got

    def options(self) -> Req:
        return Req("OPTIONS", f"sip:{self.veil[0]}:{self.veil[1]}", self.sent_by)


@contextlib.contextmanager
def udp_peer(plane: Plane, host: str = "127.0.0.1") -> Iterator[UdpPeer]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield UdpPeer(sock, plane.sip_address)


class TcpPeer:
    """A TCP connection to Veil's SIP port; responses are framed by Content-Length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self.framer = StreamFramer()
        self.ready: list[bytes] = []

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, data: bytes | Req) -> None:
        self.sock.sendall(bytes(data))

    def receive(self, timeout: float = WAIT) -> Response:
        deadline = time.monotonic() + timeout
        while not self.ready:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65535)
            assert data, "Veil closed the connection"
            self.ready += self.framer.feed(data)
        return parse_response(self.ready.pop(0), stream=True)

    def final(self, timeout: float = WAIT) -> Response:
        while True:
            response = self.receive(timeout)
            if response.status >= 200:
                return response
            assert response.status == 100, response

    def nothing_more(self, seconds: float = QUIET) -> None:
        assert not self.ready, self.ready
        self.sock.settimeout(seconds)
        with pytest.raises(TimeoutError):
            data = self.sock.recv(65535)
            pytest.fail(f"unexpected data {data!r}")

    def closed_by_peer(self, seconds: float = WAIT) -> bool:
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65535):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def options(self, veil: tuple[str, int]) -> Req:
        return Req("OPTIONS", f"sip:{veil[0]}:{veil[1]}", self.sent_by, transport="TCP")


@contextlib.contextmanager
def tcp_peer(plane: Plane) -> Iterator[TcpPeer]:
    with socket.create_connection(plane.sip_address, timeout=WAIT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield TcpPeer(sock)


def options_ok(request: Req, via: str) -> list[str]:
    return answer(
        200,
        "OK",
        request.echoed(via, ("Allow", ALLOW), ("Accept", "application/sdp")),
    )


def assert_options_answered(peer: UdpPeer) -> None:
    """Veil still answers a keep-alive OPTIONS on ``peer``, and that is the first thing it
    sends there (datagrams are handled in order: any answer to an earlier one comes first)."""
    options = peer.options()
    peer.send(options)
    assert shape(peer.receive(), options) == options_ok(options, options.stamped_via(peer.port))


# -- OPTIONS, the trunk keep-alive


@pytest.mark.parametrize(
    ("sent_by", "received"),
    [("self", None), ("192.0.2.10:5099", "127.0.0.1")],
    ids=["sent-by-is-source", "sent-by-elsewhere"],
)
def test_options_over_udp_gets_200_with_allow_accept_and_a_stamped_via(
    plane: Plane, sent_by: str, received: str | None
) -> None:
    with udp_peer(plane) as peer:
        options = peer.options()
        if sent_by != "self":
            options.sent_by = sent_by
        peer.send(options)
        response = peer.receive()
        assert shape(response, options) == options_ok(
            options, options.stamped_via(peer.port, received)
        )
        assert peer.listen(0.2) == []  # one answer, and no retransmission of it


@pytest.mark.parametrize(
    ("sent_by", "received"),
    [("self", None), ("192.0.2.10:5099", "127.0.0.1")],
    ids=["sent-by-is-source", "sent-by-elsewhere"],
)
def test_options_over_tcp_is_answered_on_the_same_connection(
    plane: Plane, sent_by: str, received: str | None
) -> None:
    with tcp_peer(plane) as peer:
        options = peer.options(plane.sip_address)
        if sent_by != "self":
            options.sent_by = sent_by
        peer.send(options)
        response = peer.receive()
        assert shape(response, options) == options_ok(
            options, options.stamped_via(peer.port, received)
        )
        peer.nothing_more(0.2)


def test_without_rport_the_answer_goes_to_the_via_port(plane: Plane) -> None:
    """RFC 3261 18.2.2: no ``rport``, so the response goes to the source address at the
    port in the Via, not to the source port."""
    with udp_peer(plane) as sender, udp_peer(plane) as listener:
        options = sender.options()
        options.sent_by = listener.sent_by
        data = bytes(options).replace(b";rport", b"")
        sender.send(data)
        response = listener.receive()
        via = f"SIP/2.0/UDP {listener.sent_by};branch={options.branch}"
        assert shape(response, options) == options_ok(options, via)
        assert sender.listen(0.2) == []


def test_options_with_max_forwards_0_is_still_answered(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        options = replace(peer.options(), max_forwards="0")
        peer.send(options)
        assert shape(peer.receive(), options) == options_ok(options, options.stamped_via(peer.port))


# -- untrusted sources


def test_an_invite_from_an_untrusted_address_gets_403_and_nobody_is_called(plane: Plane) -> None:
    session = plane.session()
    virtual, caller = session["virtual_number"], session["first_party"]
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trunk,
        udp_peer(plane, "127.0.0.3") as peer,
    ):
        trunk.bind(("127.0.0.1", plane.trunk_port))
        host, port = plane.sip_address
        # A real party calling its session's number: only the source address is wrong.
        invite = Req(
            "INVITE",
            f"sip:{virtual}@{host}:{port}",
            peer.sent_by,
            from_=f"<sip:{caller}@127.0.0.3>;tag={token()}",
            to=f"<sip:{virtual}@{host}:{port}>",
            extra=[("Contact", f"<sip:{caller}@{peer.sent_by}>")],
        )
        peer.send(invite)
        response = peer.final()
        peer.send(invite.ack(response.headers.get("To") or ""))
        trunk.settimeout(QUIET)
        with pytest.raises(TimeoutError):
            data = trunk.recv(65535)
            pytest.fail(f"the outbound trunk got {data!r}")
    assert plane.get(session["session_uuid"])["total_call_count"] == 0
    assert shape(response, invite) == answer(
        403,
        "Forbidden",
        invite.echoed(invite.stamped_via(peer.port)),
    )


def test_an_untrusted_tcp_peer_cannot_take_over_the_trunk_connection(tcp_plane: Plane) -> None:
    """Veil reuses a TCP connection for requests towards the Via sent-by and Contact of
    whoever opened it. A peer Veil refuses (403) must not thereby become the outbound
    trunk: leg B, which names the callee's real number, goes to the real trunk."""
    plane = tcp_plane
    session = plane.session()
    plane.set_session(session["session_uuid"], ring_timeout=2)  # a misrouted leg B ends soon
    virtual, caller, callee = (
        session["virtual_number"],
        session["first_party"],
        session["second_party"],
    )
    host, port = plane.sip_address
    trunk_address = f"127.0.0.1:{plane.trunk_port}"
    with (
        socket.create_server(("127.0.0.1", plane.trunk_port)) as trunk,
        socket.socket() as intruder_socket,
    ):
        intruder_socket.bind(("127.0.0.3", 0))
        intruder_socket.connect(plane.sip_address)
        intruder = TcpPeer(intruder_socket)
        # The intruder claims to be the trunk, in its Via and its Contact.
        claim = Req(
            "OPTIONS",
            f"sip:{host}:{port}",
            trunk_address,
            transport="TCP",
            extra=[("Contact", f"<sip:{trunk_address};transport=tcp>")],
        )
        intruder.send(claim)
        assert intruder.receive().status == 403
        with tcp_peer(plane) as trunk_in:
            invite = Req(
                "INVITE",
                f"sip:{virtual}@{host}:{port}",
                trunk_in.sent_by,
                transport="TCP",
                from_=f"<sip:{caller}@127.0.0.1>;tag={token()}",
                to=f"<sip:{virtual}@{host}:{port}>",
                extra=[("Contact", f"<sip:{caller}@{trunk_in.sent_by};transport=tcp>")],
            )
            trunk_in.send(invite)
            assert trunk_in.receive().status == 100
            intruder.sock.settimeout(QUIET)
            with contextlib.suppress(TimeoutError):
                stolen = intruder.sock.recv(65535)
                pytest.fail(f"leg B went to the refused peer:\n{stolen.decode(errors='replace')}")
            trunk.settimeout(WAIT)
            connection, _ = trunk.accept()
            with connection:
                connection.settimeout(WAIT)
                framer = StreamFramer()
                messages: list[bytes] = []
                while not messages:
                    data = connection.recv(65535)
                    assert data, "Veil closed its trunk connection"
                    messages = framer.feed(data)
                leg_b = parse_message(messages[0], stream=True)
                assert isinstance(leg_b, Request) and leg_b.method == "INVITE"
                assert leg_b.uri.user == callee
                busy = response_to(leg_b, 486, "Busy Here", to_tag=token())
                connection.sendall(bytes(busy))
                final = trunk_in.final()
                trunk_in.send(invite.ack(final.headers.get("To") or ""))
            assert final.status == 486


# -- broken requests


BROKEN_HEADERS = [
    pytest.param(
        "This line has no colon",
        "bad header line 'This line has no colon'",
        id="no-colon",
    ),
    pytest.param(
        "Contact: <sip:broken@127.0.0.1",
        "bad name-addr '<sip:broken@127.0.0.1'",
        id="bad-contact",
    ),
    pytest.param(
        "Max-Forwards: many",
        "more than one max-forwards header",
        id="second-max-forwards",
    ),
]


@pytest.mark.parametrize(("line", "warning"), BROKEN_HEADERS)
def test_a_request_with_a_broken_header_gets_400_with_a_warning(
    plane: Plane, line: str, warning: str
) -> None:
    with udp_peer(plane) as peer:
        options = peer.options()
        data = bytes(options).replace(
            b"\r\nContent-Length", f"\r\n{line}\r\nContent-Length".encode()
        )
        peer.send(data)
        response = peer.receive()
        assert shape(response, options) == answer(
            400,
            "Bad Request",
            options.echoed(options.stamped_via(peer.port), ("Warning", f'399 veil "{warning}"')),
        )
        assert_options_answered(peer)


GARBAGE = [
    pytest.param(bytes(random.Random(7).randrange(256) for _ in range(300)), id="random-bytes"),
    pytest.param(b"\x00\x00\x00\x00", id="zeros"),
    pytest.param(b"\r\n\r\n", id="crlf-keepalive"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id="http"),
    pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, id="tls-hello"),
    pytest.param(b"INVITE sip:a@b SIP/2.0\r\nVia: nonsense\r\n\r\n", id="unreadable-via"),
    pytest.param(b"SIP/2.0 200 OK\r\n\r\n", id="headless-response"),
    pytest.param("OPTIONS sip:ü SIP/2.0\r\n\r\n".encode("latin-1"), id="latin-1"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_gets_no_answer_and_the_endpoint_keeps_working(
    plane: Plane, garbage: bytes
) -> None:
    with udp_peer(plane) as peer:
        peer.send(garbage)
        assert_options_answered(peer)  # nothing came before the 200
        assert peer.listen(0.2) == []


def test_a_tel_request_uri_gets_416(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        invite = Req("INVITE", "tel:+14155550100", peer.sent_by)
        peer.send(invite)
        response = peer.receive()
        assert shape(response, invite) == answer(
            416,
            "Unsupported URI Scheme",
            invite.echoed(
                invite.stamped_via(peer.port),
                ("Warning", "399 veil \"unsupported URI scheme 'tel'\""),
            ),
        )
        assert_options_answered(peer)


def test_sip_3_0_gets_505(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        options = replace(peer.options(), version="SIP/3.0")
        peer.send(options)
        response = peer.receive()
        assert shape(response, options) == answer(
            505,
            "Version Not Supported",  # RFC 3261 21.5.7
            options.echoed(
                options.stamped_via(peer.port),
                ("Warning", "399 veil \"unsupported version 'SIP/3.0'\""),
            ),
        )


def test_an_invite_with_max_forwards_0_gets_483(plane: Plane) -> None:
    session = plane.session()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trunk,
        udp_peer(plane) as peer,
    ):
        trunk.bind(("127.0.0.1", plane.trunk_port))
        # A real party calling its session's number: the call would go through.
        invite = Req(
            "INVITE",
            f"sip:{session['virtual_number']}@127.0.0.1",
            peer.sent_by,
            from_=f"<sip:{session['first_party']}@127.0.0.1>;tag={token()}",
            max_forwards="0",
        )
        peer.send(invite)
        response = peer.final()
        peer.send(invite.ack(response.headers.get("To") or ""))
        trunk.settimeout(0.3)
        with pytest.raises(TimeoutError):
            data = trunk.recv(65535)
            pytest.fail(f"the outbound trunk got {data!r}")
        assert shape(response, invite) == answer(
            483,
            "Too Many Hops",
            invite.echoed(invite.stamped_via(peer.port)),
        )


def test_register_gets_405_with_allow(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        register = Req(
            "REGISTER",
            "sip:127.0.0.1",
            peer.sent_by,
            extra=[("Contact", f"<sip:edge@{peer.sent_by}>"), ("Expires", "3600")],
        )
        peer.send(register)
        response = peer.receive()
        assert shape(response, register) == answer(
            405,
            "Method Not Allowed",
            register.echoed(register.stamped_via(peer.port), ("Allow", ALLOW)),
        )


@pytest.mark.parametrize("method", ["OPTIONS", "INVITE"])
def test_a_required_extension_veil_lacks_gets_420(plane: Plane, method: str) -> None:
    """RFC 3261 8.2.2.3: a Require naming an extension the UAS does not support (Veil
    sends no reliable provisional responses: PRACK is not in its Allow) gets 420 with
    Unsupported, before anything else is done with the request."""
    with udp_peer(plane) as peer:
        request = Req(
            method,
            "sip:+14155550100@127.0.0.1",
            peer.sent_by,
            extra=[("Require", "100rel, x-edge-test")],
        )
        peer.send(request)
        response = peer.final()
        if method == "INVITE":
            peer.send(request.ack(response.headers.get("To") or ""))
        assert response.status == 420, f"{response.status} {response.reason}"
        assert response.headers.get("Unsupported") == "100rel, x-edge-test"
        to_tag(response)


@pytest.mark.parametrize("method", ["BYE", "INFO"])
def test_an_in_dialog_request_for_no_dialog_gets_481(plane: Plane, method: str) -> None:
    with udp_peer(plane) as peer:
        request = Req(
            method,
            "sip:veil@127.0.0.1",
            peer.sent_by,
            to=f"<sip:+14155550100@127.0.0.1>;tag={token()}",
            cseq=2,
        )
        peer.send(request)
        response = peer.receive()
        assert shape(response, request) == answer(
            481,
            "Call/Transaction Does Not Exist",
            request.echoed(request.stamped_via(peer.port), tag_added=False),
        )


def test_a_cancel_for_no_invite_gets_481(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        cancel = Req("CANCEL", "sip:+14155550100@127.0.0.1", peer.sent_by)
        peer.send(cancel)
        response = peer.receive()
        assert shape(response, cancel) == answer(
            481,
            "Call/Transaction Does Not Exist",
            cancel.echoed(cancel.stamped_via(peer.port)),
        )


# -- retransmissions


def _unknown_caller_invite(plane: Plane, sent_by: str, transport: str = "UDP") -> Req:
    """An INVITE to a session's number from someone who is not a party: 403."""
    virtual = plane.session()["virtual_number"]
    host, port = plane.sip_address
    return Req(
        "INVITE",
        f"sip:{virtual}@{host}:{port}",
        sent_by,
        transport=transport,
        to=f"<sip:{virtual}@{host}:{port}>",
    )


def _refused(invite: Req, rport: int) -> list[str]:
    return answer(
        403,
        "Forbidden",
        invite.echoed(
            invite.stamped_via(rport),
            ("Reason", 'SIP;cause=403;text="Caller is not a party of the session"'),
            ("Server", "Veil"),
        ),
    )


def test_a_retransmitted_invite_gets_the_same_final_response_once(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        invite = _unknown_caller_invite(plane, peer.sent_by)
        peer.send(invite)
        assert peer.receive().status == 100
        first = peer.receive_raw()
        response = parse_response(first)
        assert shape(response, invite) == _refused(invite, peer.port)
        to_tag(response)

        peer.send(invite)  # the retransmission, after Veil answered
        again = peer.receive_raw(0.3)  # long before timer G (T1 = 0.5 s)
        assert again == first  # the same response, To tag included: not a second call

        # Without an ACK the 403 is retransmitted (timer G: 0.5 s, then 1 s, ...), and
        # nothing else comes: no second 100 Trying, no other final response.
        later = peer.listen(1.0)
        assert later, "the 403 was not retransmitted"
        assert set(later) == {first}
        peer.send(invite.ack(response.headers.get("To") or ""))


def test_an_ack_stops_the_final_response_retransmissions(plane: Plane) -> None:
    with udp_peer(plane) as peer:
        invite = _unknown_caller_invite(plane, peer.sent_by)
        peer.send(invite)
        response = peer.final()
        assert shape(response, invite) == _refused(invite, peer.port)
        peer.send(invite.ack(response.headers.get("To") or ""))
        assert peer.listen(1.7) == []  # timer G would have fired at 0.5 s and 1.5 s
        assert_options_answered(peer)


def test_a_final_response_over_tcp_is_not_retransmitted(plane: Plane) -> None:
    with tcp_peer(plane) as peer:
        invite = _unknown_caller_invite(plane, peer.sent_by, "TCP")
        peer.send(invite)
        response = peer.final()
        assert shape(response, invite) == _refused(invite, peer.port)
        peer.nothing_more(0.7)
        peer.send(invite.ack(response.headers.get("To") or ""))


# -- TCP framing


def test_two_requests_in_one_tcp_write_get_two_answers(plane: Plane) -> None:
    with tcp_peer(plane) as peer:
        first, second = peer.options(plane.sip_address), peer.options(plane.sip_address)
        peer.send(bytes(first) + bytes(second))
        for options in (first, second):
            assert shape(peer.receive(), options) == options_ok(
                options, options.stamped_via(peer.port)
            )
        peer.nothing_more(0.2)


def test_a_request_split_over_three_tcp_writes_gets_one_answer(plane: Plane) -> None:
    with tcp_peer(plane) as peer:
        options = replace(
            peer.options(plane.sip_address),
            extra=[("Content-Type", "application/sdp")],
            body=SDP,
        )
        data = bytes(options)
        cut = data.index(b"Call-ID")
        for piece in (data[:cut], data[cut : len(data) - 3], data[len(data) - 3 :]):
            peer.send(piece)
            time.sleep(0.05)
        assert shape(peer.receive(), options) == options_ok(options, options.stamped_via(peer.port))
        peer.nothing_more(0.2)


def test_crlf_keepalives_on_tcp_are_ignored(plane: Plane) -> None:
    with tcp_peer(plane) as peer:
        first, second = peer.options(plane.sip_address), peer.options(plane.sip_address)
        peer.send(b"\r\n\r\n")
        time.sleep(0.05)
        peer.send(b"\r\n\r\n" + bytes(first) + b"\r\n\r\n\r\n\r\n" + bytes(second) + b"\r\n\r\n")
        for options in (first, second):
            assert shape(peer.receive(), options) == options_ok(
                options, options.stamped_via(peer.port)
            )
        peer.nothing_more(0.2)


def test_a_tcp_message_without_content_length_closes_the_connection(plane: Plane) -> None:
    with tcp_peer(plane) as peer:
        options = replace(peer.options(plane.sip_address), content_length=False)
        peer.send(options)
        assert peer.closed_by_peer(), "the connection is still open"
    with tcp_peer(plane) as peer:
        options = peer.options(plane.sip_address)
        peer.send(options)
        assert shape(peer.receive(), options) == options_ok(options, options.stamped_via(peer.port))


# -- fuzzing

SPICE = [
    b"\r\n",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b";",
    b",",
    b":",
    b"<",
    b">",
    b'"',
    b"\\",
    b"\x00",
    b"\xff\xfe",
    b"%",
    b"%zz",
    b"@",
    b"=",
    b"sip:",
    b"tel:",
    b"[::1]",
    b";tag=",
    b";branch=",
    b";rport",
    b";received=",
    b"\r\n ",
    "é".encode(),
    "²".encode(),
    b"99999999999999999999",
    b"-1",
    b"65536",
    b"Content-Length: 99999\r\n",
    b"l: 0\r\n",
    b"Max-Forwards: 0\r\n",
    b"Max-Forwards: 256\r\n",
    b"Via: SIP/2.0/UDP\r\n",
    b"v: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\n",
    b"To: <sip:a@b>;tag=x\r\n",
    b"Contact: *\r\n",
    b"Route: <sip:127.0.0.1;lr>\r\n",
    b"Record-Route: <sip:127.0.0.1;lr>,,\r\n",
    b"Require: 100rel\r\n",
    b"Content-Type: application/sdp\r\n",
    b"CSeq: 2147483648 INVITE\r\n",
]
NUMBERS = [b"0", b"1", b"65535", b"65536", b"2147483647", b"4294967296", b"9" * 30, "²".encode()]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random edits of ``data``: bytes, lines, numbers."""
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        i = rng.randrange(len(data) + 1)
        j = min(len(data), i + rng.randint(1, 40))
        if op == 0:  # change a byte
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
        elif op == 1:  # drop a slice
            data = data[:i] + data[j:]
        elif op == 2:  # repeat a slice
            data = data[:j] + data[i:j] + data[j:]
        elif op == 3:  # insert something SIP's grammar cares about
            data = data[:i] + rng.choice(SPICE) + data[i:]
        elif op == 4:  # a number becomes an extreme one
            runs = list(re.finditer(rb"[0-9]+", data))
            if runs:
                run = rng.choice(runs)
                data = data[: run.start()] + rng.choice(NUMBERS) + data[run.end() :]
        else:  # whole lines: swap, drop, repeat, change case, replace the value
            lines = data.split(b"\r\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            if op == 5:
                lines[a], lines[b] = lines[b], lines[a]
            elif op == 6:
                del lines[a]
            elif op == 7:
                lines.insert(a, lines[b])
            else:
                name, colon, _ = lines[a].partition(b":")
                if colon and rng.random() < 0.7:
                    lines[a] = name + b": " + rng.choice(SPICE).strip(b"\r\n")
                else:
                    lines[a] = lines[a].swapcase()
            data = b"\r\n".join(lines)
    if rng.random() < 0.05:
        data = data[: rng.randrange(len(data) + 1)]
    return data


SDP = (
    b"v=0\r\no=edge 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def _seeds(plane: Plane, sent_by: str, virtual: str, transport: str = "UDP") -> list[Req]:
    """Valid requests to start from; none of them can reach the outbound trunk (the
    caller is not a party of the session)."""
    host, port = plane.sip_address
    uri = f"sip:{virtual}@{host}:{port}"
    contact = [("Contact", f"<sip:edge@{sent_by};transport={transport.lower()}>")]
    tagged = f"<sip:{virtual}@{host}>;tag={token()}"
    sdp = [*contact, ("Content-Type", "application/sdp"), ("Allow", ALLOW)]
    return [
        Req("INVITE", uri, sent_by, transport, to=f"<{uri}>", extra=sdp, body=SDP),
        Req("INVITE", uri, sent_by, transport, to=f"<{uri}>", extra=contact),
        Req("OPTIONS", f"sip:{host}:{port}", sent_by, transport),
        Req("OPTIONS", f"sip:{host}:{port}", sent_by, transport, max_forwards=None),
        Req("BYE", uri, sent_by, transport, to=tagged, cseq=2),
        Req("INFO", uri, sent_by, transport, to=tagged, cseq=3, extra=contact),
        Req("CANCEL", uri, sent_by, transport, to=f"<{uri}>"),
        Req("ACK", uri, sent_by, transport, to=tagged),
    ]


@contextlib.contextmanager
def checked_afterwards(plane: Plane) -> Iterator[None]:
    """Around a fuzz run: nothing reached the outbound trunk, and afterwards Veil runs,
    answers OPTIONS and logged no error."""
    log_start = len(plane.server.log())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trunk:
        trunk.bind(("127.0.0.1", plane.trunk_port))
        yield
        time.sleep(0.5)  # the 403s and 404s wait for the database
        trunk.settimeout(0.01)
        with pytest.raises(TimeoutError):
            data = trunk.recv(65535)
            pytest.fail(f"a fuzzed request reached the outbound trunk: {data[:200]!r}")
    with udp_peer(plane) as peer:
        assert_options_answered(peer)
    with tcp_peer(plane) as tcp:
        options = tcp.options(plane.sip_address)
        tcp.send(options)
        assert shape(tcp.receive(), options) == options_ok(options, options.stamped_via(tcp.port))
    assert plane.server.process.poll() is None
    log = plane.server.log()[log_start:]
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log


def test_fuzzed_udp_requests_do_not_hurt_the_endpoint(plane: Plane) -> None:
    rng = random.Random(20240611)
    virtual = plane.session()["virtual_number"]
    statuses: set[int] = set()
    datagrams: list[bytes] = []
    with checked_afterwards(plane), udp_peer(plane) as peer:
        for _ in range(300):
            seed = rng.choice(_seeds(plane, peer.sent_by, virtual))
            peer.send(mutate(rng, bytes(seed)))
            time.sleep(0.001)
            datagrams += peer.listen(0.0005)
        datagrams += peer.listen(0.5)
    for datagram in datagrams:
        assert datagram.startswith(b"SIP/2.0 "), datagram[:200]
        status = int(datagram[8:11])
        assert status != 500, f"a server error:\n{datagram.decode(errors='replace')}"
        statuses.add(status)
    # The mutations hit both sides: some requests were refused as malformed, some handled.
    assert {200, 400} <= statuses, statuses


def test_a_fuzzed_tcp_stream_does_not_hurt_the_endpoint(plane: Plane) -> None:
    """Mutated requests written to TCP connections in random pieces, with keep-alives
    between them; a connection Veil closes (it lost the framing) is opened again."""
    rng = random.Random(5)
    virtual = plane.session()["virtual_number"]
    received = closed = 0
    with checked_afterwards(plane):
        sock = socket.create_connection(plane.sip_address, timeout=WAIT)
        try:
            for _ in range(150):
                sent_by = "{}:{}".format(*sock.getsockname()[:2])
                data = mutate(rng, bytes(rng.choice(_seeds(plane, sent_by, virtual, "TCP"))))
                if rng.random() < 0.2:
                    data = b"\r\n\r\n" + data
                cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(3)))
                try:
                    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                        sock.sendall(data[a:b])
                        time.sleep(0.001)
                    sock.settimeout(0.002)
                    while chunk := sock.recv(65535):
                        received += len(chunk)
                    lost = True  # recv gave b"": Veil closed the connection
                except TimeoutError:
                    lost = False
                except (BrokenPipeError, ConnectionResetError):
                    lost = True
                if lost:
                    closed += 1
                    sock.close()
                    sock = socket.create_connection(plane.sip_address, timeout=WAIT)
        finally:
            sock.close()
    assert received and closed, (received, closed)
