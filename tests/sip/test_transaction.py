"""SIP transactions (RFC 3261 section 17, RFC 6026), driven by a manual clock.

Every timer value is asserted to the exact instant: the scheduler only moves when a
test calls ``advance``, and the default timers are T1=0.5 s, T2=4 s, T4=5 s, so that
64*T1 (timers B, F, H, J, L, M) is 32 s. All instants used are binary fractions, so
the float arithmetic is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from veil.sip.message import Request, Response, parse_message, reason_for, response_to
from veil.sip.timing import Cancellable, ManualScheduler, SipTimers
from veil.sip.transaction import (
    ClientInvite,
    ClientNonInvite,
    ClientTransaction,
    ServerInvite,
    ServerNonInvite,
    State,
    Target,
    TransactionLayer,
    TransportError,
    new_branch,
)

UDP = Target("udp", "192.0.2.20", 5060)
TCP = Target("tcp", "192.0.2.20", 5060)
OTHER = Target("udp", "198.51.100.7", 5060)
TINY = 1 / 64  # an instant just before a timer, exact in binary


def build_request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bK-inv-1",
    sent_by: str = "192.0.2.1:5060",
    transport: str = "UDP",
    call_id: str = "call-1@192.0.2.1",
    cseq: int = 1,
    cseq_method: str | None = None,
    from_tag: str = "alice-tag",
    to_tag: str | None = None,
    uri: str = "sip:bob@example.com",
    proxy_via: bool = False,
) -> Request:
    """A request as a peer would send it, parsed from text."""
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {sent_by};branch={branch}",
    ]
    if proxy_via:
        lines.append("Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-upstream")
    lines += [
        "Route: <sip:proxy.example.com;lr>",
        "Max-Forwards: 70",
        f"From: Alice <sip:alice@example.com>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:alice@192.0.2.1:5060>",
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def build_response(request: Request, status: int, *, to_tag: str | None = "bob-tag") -> Response:
    """The peer's response to ``request``, through the wire format."""
    response = response_to(request, status, reason_for(status), to_tag=to_tag)
    message = parse_message(bytes(response))
    assert isinstance(message, Response)
    return message


def with_branch(response: Response, branch: str) -> Response:
    headers = response.headers.copy()
    top = headers.raw_values("Via")[0]
    headers.remove("Via")
    headers.add("Via", top.split(";branch=")[0] + f";branch={branch}")
    message = parse_message(bytes(Response(headers, b"", response.status, response.reason)))
    assert isinstance(message, Response)
    return message


@dataclass
class Sent:
    message: Request | Response
    target: Target
    at: float


class Harness:
    """A transaction layer whose wire is a list and whose clock is manual."""

    def __init__(self, timers: SipTimers | None = None) -> None:
        self.clock = ManualScheduler()
        self.sent: list[Sent] = []
        self.responses: list[Response] = []
        self.errors: list[str] = []
        self.broken: set[Target] = set()
        self.layer = TransactionLayer(self._send, self.clock, timers)

    def _send(self, message: Request | Response, target: Target) -> None:
        if target in self.broken:
            raise TransportError(f"no route to {target}")
        self.sent.append(Sent(message, target, self.clock.time()))

    def at(self, instant: float) -> None:
        """Move the clock to an absolute instant."""
        assert instant >= self.clock.time()
        self.clock.advance(instant - self.clock.time())

    def client(self, request: Request, target: Target = UDP) -> ClientTransaction:
        return self.layer.request(request, target, self.responses.append, self.errors.append)

    def invite(self, request: Request, target: Target = UDP) -> ClientInvite:
        tx = self.client(request, target)
        assert isinstance(tx, ClientInvite)
        return tx

    def requests(self, method: str) -> list[Request]:
        return [
            s.message
            for s in self.sent
            if isinstance(s.message, Request) and s.message.method == method
        ]

    def request_times(self, method: str) -> list[float]:
        return [
            s.at for s in self.sent if isinstance(s.message, Request) and s.message.method == method
        ]

    def response_times(self, status: int) -> list[float]:
        return [
            s.at
            for s in self.sent
            if isinstance(s.message, Response) and s.message.status == status
        ]

    def statuses(self) -> list[int]:
        return [s.message.status for s in self.sent if isinstance(s.message, Response)]


def server_invite(h: Harness, request: Request, source: Target = UDP) -> ServerInvite:
    tx = h.layer.server(request, source)
    assert isinstance(tx, ServerInvite)
    return tx


def server_non_invite(h: Harness, request: Request, source: Target = UDP) -> ServerNonInvite:
    tx = h.layer.server(request, source)
    assert isinstance(tx, ServerNonInvite)
    return tx


# Timer A: T1, doubling with no T2 cap, until timer B (64*T1) at 32 s.
INVITE_RETRANSMISSIONS = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
# Timer E / G: T1, doubling, capped at T2 (4 s), until 32 s.
CAPPED_RETRANSMISSIONS = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


# -- the scheduler itself


def test_manual_scheduler_runs_callbacks_in_time_order_with_their_own_time() -> None:
    clock = ManualScheduler(start=10.0)
    ran: list[tuple[str, float]] = []

    def record(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, clock.time()))

    clock.call_later(3.0, record("c"))
    clock.call_later(1.0, record("a"))
    clock.call_later(2.0, record("b1"))
    clock.call_later(2.0, record("b2"))  # same instant: the order they were scheduled in
    assert clock.time() == 10.0
    assert clock.pending() == 4

    clock.advance(2.5)
    assert ran == [("a", 11.0), ("b1", 12.0), ("b2", 12.0)]
    assert clock.time() == 12.5
    assert clock.pending() == 1

    clock.advance(0.5)  # exactly at the deadline: due
    assert ran[-1] == ("c", 13.0)
    assert clock.pending() == 0


def test_manual_scheduler_moves_only_on_advance_and_never_backwards() -> None:
    clock = ManualScheduler()
    ran: list[float] = []
    clock.call_later(0.0, lambda: ran.append(clock.time()))
    clock.call_later(-1.0, lambda: ran.append(clock.time()))  # a late timer: due now
    assert ran == []  # nothing runs without advance
    clock.advance(0)
    assert ran == [0.0, 0.0]
    with pytest.raises(ValueError):
        clock.advance(-1.0)
    assert clock.time() == 0.0


def test_manual_scheduler_cancellation() -> None:
    clock = ManualScheduler()
    ran: list[str] = []
    keep = clock.call_later(1.0, lambda: ran.append("keep"))
    drop = clock.call_later(1.0, lambda: ran.append("drop"))
    drop.cancel()
    assert clock.pending() == 1
    clock.advance(5.0)
    assert ran == ["keep"]
    keep.cancel()  # cancelling after it ran is harmless
    assert clock.pending() == 0


def test_manual_scheduler_callbacks_schedule_callbacks_within_one_advance() -> None:
    clock = ManualScheduler()
    ran: list[tuple[str, float]] = []
    handles: dict[str, Cancellable] = {}

    def first() -> None:
        ran.append(("first", clock.time()))
        clock.call_later(1.0, second)  # at 2.0: inside the span
        clock.call_later(0.0, lambda: ran.append(("now", clock.time())))
        clock.call_later(10.0, lambda: ran.append(("late", clock.time())))  # at 11.0

    def second() -> None:
        ran.append(("second", clock.time()))
        # A callback may cancel one that is due later in the same advance.
        handles["victim"].cancel()

    clock.call_later(1.0, first)
    handles["victim"] = clock.call_later(2.5, lambda: ran.append(("victim", clock.time())))
    clock.call_later(1.5, lambda: ran.append(("between", clock.time())))
    clock.advance(3.0)
    assert ran == [("first", 1.0), ("now", 1.0), ("between", 1.5), ("second", 2.0)]
    assert clock.pending() == 1
    clock.advance(8.0)
    assert ran[-1] == ("late", 11.0)


def test_timer_values() -> None:
    timers = SipTimers()
    assert (timers.t1, timers.t2, timers.t4, timers.b, timers.d_unreliable) == (
        0.5,
        4.0,
        5.0,
        32.0,
        32.0,
    )
    assert SipTimers(t1=0.25).b == 16.0


# -- INVITE client transaction (17.1.1)


def test_invite_client_udp_timer_a_doubles_without_t2_cap_until_timer_b() -> None:
    h = Harness()
    tx = h.invite(build_request())
    assert tx.state is State.CALLING
    assert h.request_times("INVITE") == [0.0]
    assert h.sent[0].target == UDP

    h.at(32 - TINY)
    assert h.request_times("INVITE") == INVITE_RETRANSMISSIONS
    assert h.errors == []
    assert tx.state is State.CALLING

    h.at(32)
    assert h.errors == ["timeout"]
    assert tx.state is State.TERMINATED
    assert h.layer.counts() == (0, 0)
    assert h.clock.pending() == 0

    h.at(200)
    assert h.errors == ["timeout"]
    assert h.request_times("INVITE") == INVITE_RETRANSMISSIONS
    assert h.responses == []
    # A response after the timeout no longer matches.
    assert h.layer.receive_response(build_response(tx.request, 180)) is False


def test_invite_client_timer_b_follows_t1() -> None:
    h = Harness(SipTimers(t1=0.25))
    h.invite(build_request())
    h.at(16 - TINY)
    assert h.request_times("INVITE") == [t / 2 for t in INVITE_RETRANSMISSIONS]
    assert h.errors == []
    h.at(16)
    assert h.errors == ["timeout"]


def test_invite_client_provisional_stops_timers_a_and_b() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    h.at(1.0)
    assert h.request_times("INVITE") == [0.0, 0.5]

    ringing = build_response(request, 180)
    assert h.layer.receive_response(ringing) is True
    assert tx.state is State.PROCEEDING
    assert h.responses == [ringing]

    h.at(300)
    assert h.request_times("INVITE") == [0.0, 0.5]  # no retransmission after a 1xx
    assert h.errors == []  # no timer B while proceeding
    assert tx.state is State.PROCEEDING

    # More provisionals reach the TU.
    progress = build_response(request, 183)
    assert h.layer.receive_response(progress) is True
    assert h.responses == [ringing, progress]


def test_invite_client_2xx_goes_to_tu_each_time_and_is_not_acked_by_the_transaction() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    h.at(0.25)
    ok = build_response(request, 200)
    assert h.layer.receive_response(ok) is True
    assert tx.state is State.ACCEPTED
    assert h.responses == [ok]

    h.at(2.0)
    retransmitted = build_response(request, 200)
    assert h.layer.receive_response(retransmitted) is True
    assert h.responses == [ok, retransmitted]  # the TU re-sends its ACK
    # A 2xx from another fork goes up too.
    forked = build_response(request, 200, to_tag="fork-2")
    assert h.layer.receive_response(forked) is True
    assert h.responses == [ok, retransmitted, forked]
    # Provisional and non-2xx responses are ignored once accepted.
    assert h.layer.receive_response(build_response(request, 486)) is True
    assert h.layer.receive_response(build_response(request, 180)) is True
    assert h.responses == [ok, retransmitted, forked]

    # The 2xx ACK is the TU's job: the transaction sent nothing but the INVITE.
    h.at(31.0)
    assert [type(s.message).__name__ for s in h.sent] == ["Request"]
    assert h.requests("ACK") == []
    assert h.errors == []

    # Timer M (RFC 6026): 64*T1 after the 2xx.
    h.at(32.25 - TINY)
    assert tx.state is State.ACCEPTED
    h.at(32.25)
    assert tx.state is State.TERMINATED
    assert h.errors == []
    assert h.layer.receive_response(build_response(request, 200)) is False


@pytest.mark.parametrize("status", [300, 404, 486, 503, 603])
def test_invite_client_non_2xx_is_acked_inside_the_transaction(status: int) -> None:
    h = Harness()
    request = build_request(proxy_via=True, branch="z9hG4bK-nonok")
    tx = h.invite(request)
    h.at(0.25)
    final = build_response(request, status, to_tag="bob-77")
    assert h.layer.receive_response(final) is True
    assert tx.state is State.COMPLETED
    assert h.responses == [final]

    [ack] = h.requests("ACK")
    assert h.sent[-1].target == UDP
    assert ack.uri == request.uri
    assert [v.branch for v in ack.vias] == ["z9hG4bK-nonok"]  # only the top Via
    assert ack.top_via == request.top_via
    assert ack.cseq == (1, "ACK")
    assert ack.call_id == request.call_id
    assert ack.from_ == request.from_
    assert ack.to.tag == "bob-77"
    assert ack.to.uri == request.to.uri
    assert ack.headers.raw_values("Route") == request.headers.raw_values("Route")
    assert ack.body == b""
    # The ACK is well-formed on the wire.
    reparsed = parse_message(bytes(ack))
    assert isinstance(reparsed, Request)
    assert reparsed.method == "ACK"

    # A retransmitted final: ACK again, not to the TU again.
    assert h.layer.receive_response(build_response(request, status, to_tag="bob-77")) is True
    assert len(h.requests("ACK")) == 2
    assert h.responses == [final]

    # No INVITE retransmission after a final; timer D is 32 s on UDP.
    h.at(32.25 - TINY)
    assert h.request_times("INVITE") == [0.0]
    assert tx.state is State.COMPLETED
    assert h.layer.receive_response(build_response(request, status, to_tag="bob-77")) is True
    assert len(h.requests("ACK")) == 3
    h.at(32.25)
    assert tx.state is State.TERMINATED
    assert h.layer.counts() == (0, 0)
    assert h.layer.receive_response(build_response(request, status, to_tag="bob-77")) is False
    assert len(h.requests("ACK")) == 3
    assert h.responses == [final]
    assert h.errors == []


def test_invite_client_final_after_provisional() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    h.layer.receive_response(build_response(request, 180))
    h.at(5.0)
    busy = build_response(request, 486)
    h.layer.receive_response(busy)
    assert tx.state is State.COMPLETED
    assert len(h.requests("ACK")) == 1
    assert h.responses[-1] is busy
    h.at(37.0)
    assert tx.state is State.TERMINATED
    assert h.errors == []


def test_invite_client_tcp_no_retransmissions_and_timer_d_zero() -> None:
    h = Harness()
    request = build_request(transport="TCP")
    tx = h.invite(request, TCP)
    h.at(31.0)
    assert h.request_times("INVITE") == [0.0]
    assert h.sent[0].target == TCP

    final = build_response(request, 404)
    h.layer.receive_response(final)
    assert tx.state is State.COMPLETED
    [ack] = h.requests("ACK")
    assert ack.top_via.transport == "TCP"
    h.clock.advance(0)  # timer D = 0
    assert tx.state is State.TERMINATED
    assert h.responses == [final]
    assert h.errors == []


def test_invite_client_tcp_timer_b() -> None:
    h = Harness()
    tx = h.invite(build_request(transport="TCP"), TCP)
    h.at(32 - TINY)
    assert h.errors == []
    h.at(32)
    assert h.errors == ["timeout"]
    assert tx.state is State.TERMINATED
    assert h.request_times("INVITE") == [0.0]


# -- CANCEL (9.1)


def test_cancel_before_provisional_waits_for_one() -> None:
    h = Harness()
    request = build_request(proxy_via=True)
    tx = h.invite(request)
    h.at(0.25)
    tx.cancel()
    h.at(1.0)
    assert h.requests("CANCEL") == []
    assert h.request_times("INVITE") == [0.0, 0.5]  # still calling: A keeps running

    ringing = build_response(request, 180)
    h.layer.receive_response(ringing)
    [cancel] = h.requests("CANCEL")
    assert h.sent[-1].at == 1.0
    assert h.sent[-1].target == UDP
    assert cancel.uri == request.uri
    assert [v.branch for v in cancel.vias] == [request.top_via.branch]
    assert cancel.top_via == request.top_via
    assert cancel.cseq == (1, "CANCEL")
    assert cancel.call_id == request.call_id
    assert cancel.from_ == request.from_
    assert cancel.to == request.to
    assert cancel.to.tag is None
    assert cancel.headers.raw_values("Route") == request.headers.raw_values("Route")
    assert h.responses == [ringing]

    # The 200 for the CANCEL belongs to the CANCEL's own transaction.
    assert h.layer.receive_response(build_response(cancel, 200)) is True
    assert h.responses == [ringing]
    assert tx.state is State.PROCEEDING

    # The 487 for the INVITE is ACKed and reaches the TU.
    terminated = build_response(request, 487)
    assert h.layer.receive_response(terminated) is True
    assert tx.state is State.COMPLETED
    assert h.responses == [ringing, terminated]
    [ack] = h.requests("ACK")
    assert ack.cseq == (1, "ACK")
    assert ack.top_via.branch == request.top_via.branch

    h.at(40.0)
    assert len(h.requests("CANCEL")) == 1  # answered: no retransmission
    assert h.request_times("INVITE") == [0.0, 0.5]
    assert h.errors == []
    assert h.layer.counts() == (0, 0)


def test_cancel_while_proceeding_is_sent_at_once_with_its_reason() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    h.at(0.25)
    h.layer.receive_response(build_response(request, 183))
    h.at(3.0)
    reason = 'SIP;cause=200;text="Call completed elsewhere"'
    tx.cancel(reason)
    [cancel] = h.requests("CANCEL")
    assert h.sent[-1].at == 3.0
    assert cancel.headers.get("Reason") == reason
    assert cancel.cseq == (1, "CANCEL")
    tx.cancel()  # a second cancel sends nothing more
    assert len(h.requests("CANCEL")) == 1

    # Unanswered, the CANCEL is retransmitted by its own (non-INVITE) transaction.
    h.at(3.5)
    assert h.request_times("CANCEL") == [3.0, 3.5]
    assert h.request_times("INVITE") == [0.0]


def test_cancel_pending_is_dropped_by_a_final_response() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    tx.cancel()
    h.layer.receive_response(build_response(request, 200))
    assert tx.state is State.ACCEPTED
    tx.cancel()
    h.at(10.0)
    assert h.requests("CANCEL") == []


def test_cancel_after_final_sends_nothing() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    h.layer.receive_response(build_response(request, 180))
    h.layer.receive_response(build_response(request, 486))
    tx.cancel()
    assert h.requests("CANCEL") == []


def test_cancelled_invite_without_final_gives_up_after_64_t1() -> None:
    h = Harness()
    request = build_request()
    tx = h.invite(request)
    h.layer.receive_response(build_response(request, 180))
    h.at(2.0)
    tx.cancel()
    h.at(34.0 - TINY)
    assert h.errors == []
    h.at(34.0)
    assert h.errors == ["timeout"]
    assert tx.state is State.TERMINATED


# -- non-INVITE client transaction (17.1.2)


def test_non_invite_client_udp_timer_e_capped_at_t2_until_timer_f() -> None:
    h = Harness()
    tx = h.client(build_request("OPTIONS", branch="z9hG4bK-opt"))
    assert isinstance(tx, ClientNonInvite)
    assert tx.state is State.TRYING
    h.at(32 - TINY)
    assert h.request_times("OPTIONS") == CAPPED_RETRANSMISSIONS
    assert h.errors == []
    h.at(32)
    assert h.errors == ["timeout"]
    assert tx.state is State.TERMINATED
    h.at(100)
    assert h.request_times("OPTIONS") == CAPPED_RETRANSMISSIONS
    assert h.errors == ["timeout"]
    assert h.clock.pending() == 0


def test_non_invite_client_retransmits_every_t2_after_provisional() -> None:
    h = Harness()
    request = build_request("BYE", branch="z9hG4bK-bye", to_tag="bob-tag", cseq=2)
    tx = h.client(request)
    h.at(0.25)
    trying = build_response(request, 100, to_tag=None)
    h.layer.receive_response(trying)
    assert tx.state is State.PROCEEDING
    assert h.responses == [trying]
    h.at(32 - TINY)
    # The pending timer E fires at 0.5, then every T2.
    assert h.request_times("BYE") == [0.0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert h.errors == []
    h.at(32)  # timer F keeps running in Proceeding
    assert h.errors == ["timeout"]
    assert tx.state is State.TERMINATED


def test_non_invite_client_final_once_then_timer_k() -> None:
    h = Harness()
    request = build_request("OPTIONS", branch="z9hG4bK-opt2")
    tx = h.client(request)
    h.at(0.75)
    ok = build_response(request, 200)
    assert h.layer.receive_response(ok) is True
    assert tx.state is State.COMPLETED
    assert h.responses == [ok]
    assert h.layer.receive_response(build_response(request, 200)) is True  # absorbed
    assert h.layer.receive_response(build_response(request, 100)) is True  # absorbed
    assert h.responses == [ok]
    h.at(5.75 - TINY)
    assert tx.state is State.COMPLETED
    assert h.request_times("OPTIONS") == [0.0, 0.5]
    h.at(5.75)  # timer K = T4
    assert tx.state is State.TERMINATED
    assert h.layer.receive_response(build_response(request, 200)) is False
    h.at(60)
    assert h.errors == []
    assert h.responses == [ok]
    assert h.request_times("OPTIONS") == [0.0, 0.5]


def test_non_invite_client_tcp() -> None:
    h = Harness()
    request = build_request("OPTIONS", branch="z9hG4bK-opt3", transport="TCP")
    tx = h.client(request, TCP)
    h.at(31.0)
    assert h.request_times("OPTIONS") == [0.0]
    ok = build_response(request, 200)
    h.layer.receive_response(ok)
    assert tx.state is State.COMPLETED
    h.clock.advance(0)  # timer K = 0
    assert tx.state is State.TERMINATED
    assert h.responses == [ok]

    other = h.client(build_request("OPTIONS", branch="z9hG4bK-opt4", transport="TCP"), TCP)
    h.at(63 - TINY)
    assert h.errors == []
    h.at(63)
    assert h.errors == ["timeout"]
    assert other.state is State.TERMINATED


# -- INVITE server transaction (17.2.1, RFC 6026)


def test_invite_server_sends_100_at_once_and_repeats_the_last_provisional() -> None:
    h = Harness()
    request = build_request()
    tx = server_invite(h, request)
    assert tx.state is State.PROCEEDING
    [trying] = [s.message for s in h.sent]
    assert isinstance(trying, Response)
    assert trying.status == 100
    assert trying.to.tag is None
    assert trying.cseq == (1, "INVITE")
    assert h.sent[0].target == UDP

    assert h.layer.match(build_request()) is tx  # a retransmission: absorbed
    assert h.statuses() == [100, 100]

    ringing = tx.reply(180, to_tag="bob-tag")
    assert ringing.to.tag == "bob-tag"
    assert h.layer.match(build_request()) is tx
    assert h.statuses() == [100, 100, 180, 180]
    assert h.sent[-1].message is ringing

    # Provisional responses are not retransmitted by timers.
    h.at(31.0)
    assert h.statuses() == [100, 100, 180, 180]
    assert tx.state is State.PROCEEDING


def test_invite_server_non_2xx_retransmitted_by_timer_g_until_ack() -> None:
    h = Harness()
    request = build_request()
    tx = server_invite(h, request)
    busy = tx.reply(486, to_tag="bob-tag")
    assert tx.state is State.COMPLETED
    assert tx.finished
    h.at(10.0)
    assert h.response_times(486) == [0.0, 0.5, 1.5, 3.5, 7.5]

    # A retransmitted INVITE gets the final again.
    assert h.layer.match(build_request()) is tx
    assert h.response_times(486) == [0.0, 0.5, 1.5, 3.5, 7.5, 10.0]

    # A second final from the TU is ignored.
    tx.reply(500)
    assert 500 not in h.statuses()

    ack = build_request("ACK", cseq_method="ACK", to_tag="bob-tag")
    assert h.layer.match(ack) is tx  # same branch: absorbed
    assert tx.state is State.CONFIRMED
    assert h.layer.match(ack) is tx  # retransmitted ACK: absorbed
    assert h.layer.match(build_request()) is tx  # and a late INVITE, silently
    h.at(15.0 - TINY)  # timer I = T4
    assert tx.state is State.CONFIRMED
    assert h.response_times(486) == [0.0, 0.5, 1.5, 3.5, 7.5, 10.0]
    h.at(15.0)
    assert tx.state is State.TERMINATED
    assert h.layer.counts() == (0, 0)
    assert h.sent[-1].message is busy
    assert h.clock.pending() == 0


def test_invite_server_non_2xx_without_ack_ends_at_timer_h() -> None:
    h = Harness()
    tx = server_invite(h, build_request())
    errors: list[str] = []
    tx.on_error = errors.append
    tx.reply(603, to_tag="bob-tag")
    h.at(32 - TINY)
    assert h.response_times(603) == CAPPED_RETRANSMISSIONS
    assert tx.state is State.COMPLETED
    assert errors == []
    h.at(32)
    assert tx.state is State.TERMINATED
    assert errors == ["no ACK"]  # 17.2.1: the TU is told the ACK never came
    h.at(100)
    assert h.response_times(603) == CAPPED_RETRANSMISSIONS
    assert h.layer.counts() == (0, 0)


def test_invite_server_2xx_retransmitted_until_ack_with_its_own_branch() -> None:
    h = Harness()
    request = build_request()
    tx = server_invite(h, request)
    errors: list[str] = []
    tx.on_error = errors.append
    ok = tx.reply(200, to_tag="bob-tag")
    assert tx.state is State.ACCEPTED
    h.at(5.0)
    assert h.response_times(200) == [0.0, 0.5, 1.5, 3.5]

    # ACKs that are not for this 2xx change nothing.
    assert h.layer.match(build_request("ACK", branch="z9hG4bK-ack-x", call_id="other")) is None
    assert h.layer.match(build_request("ACK", branch="z9hG4bK-ack-y", cseq=2)) is None
    h.at(7.5)
    assert h.response_times(200) == [0.0, 0.5, 1.5, 3.5, 7.5]

    ack = build_request("ACK", branch="z9hG4bK-ack-2xx", to_tag="bob-tag")
    assert h.layer.match(ack) is None  # the TU sees the ACK of a 2xx
    assert tx.acked
    h.at(100.0)
    assert h.response_times(200) == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert errors == []
    assert tx.state is State.TERMINATED
    assert h.layer.counts() == (0, 0)
    assert h.sent[-1].message is ok


def test_invite_server_2xx_acked_with_the_invite_branch_reaches_the_tu() -> None:
    # An ACK for a 2xx is a new transaction, but a UA that reuses the INVITE's branch
    # still acknowledges the 2xx: RFC 6026 passes ACKs in Accepted to the TU.
    h = Harness()
    tx = server_invite(h, build_request())
    errors: list[str] = []
    tx.on_error = errors.append
    tx.reply(200, to_tag="bob-tag")
    h.at(1.0)
    ack = build_request("ACK", to_tag="bob-tag")
    assert ack.top_via.branch == tx.request.top_via.branch
    assert h.layer.match(ack) is None
    assert tx.acked
    h.at(100.0)
    assert h.response_times(200) == [0.0, 0.5]
    assert errors == []


def test_invite_server_absorbs_invite_retransmissions_after_the_2xx_ack() -> None:
    # RFC 6026 Accepted state: until timer L (64*T1) a late INVITE retransmission is
    # absorbed; it must not reach the TU as a new call.
    h = Harness()
    tx = server_invite(h, build_request())
    tx.reply(200, to_tag="bob-tag")
    h.at(1.0)
    assert h.layer.match(build_request("ACK", branch="z9hG4bK-ack", to_tag="bob-tag")) is None
    h.at(2.0)
    assert h.layer.match(build_request()) is tx
    assert h.statuses() == [100, 200, 200]  # nothing sent for it
    h.at(32 - TINY)
    assert h.layer.match(build_request()) is tx
    h.at(32)
    assert tx.state is State.TERMINATED
    assert h.layer.match(build_request()) is None


def test_invite_server_2xx_without_ack_reports_no_ack_once() -> None:
    h = Harness()
    tx = server_invite(h, build_request())
    errors: list[str] = []
    tx.on_error = errors.append
    tx.reply(200, to_tag="bob-tag")
    assert h.layer.match(build_request()) is tx  # INVITE retransmission in Accepted: absorbed
    assert h.statuses() == [100, 200]
    h.at(32 - TINY)
    assert h.response_times(200) == CAPPED_RETRANSMISSIONS
    assert errors == []
    h.at(32)
    assert errors == ["no ACK"]
    assert tx.state is State.TERMINATED
    assert not tx.acked
    h.at(100)
    assert errors == ["no ACK"]
    assert h.response_times(200) == CAPPED_RETRANSMISSIONS
    assert h.layer.counts() == (0, 0)


def test_invite_server_tcp_sends_finals_once() -> None:
    h = Harness()
    tx = server_invite(h, build_request(transport="TCP"), TCP)
    tx.reply(486, to_tag="bob-tag")
    h.at(10.0)
    assert h.response_times(486) == [0.0]
    assert h.sent[-1].target == TCP
    h.layer.match(build_request("ACK", cseq_method="ACK", transport="TCP", to_tag="bob-tag"))
    assert tx.state is State.CONFIRMED
    h.clock.advance(0)  # timer I = 0
    assert tx.state is State.TERMINATED

    h2 = Harness()
    tx2 = server_invite(h2, build_request(transport="TCP"), TCP)
    errors: list[str] = []
    tx2.on_error = errors.append
    tx2.reply(200, to_tag="bob-tag")
    h2.at(32 - TINY)
    assert h2.response_times(200) == [0.0]
    assert errors == []
    h2.at(32)
    assert errors == ["no ACK"]


def test_merged_request_rejected_does_not_unhook_the_accepted_one() -> None:
    # 8.2.2.2: the same INVITE arriving again by another path (another branch) is
    # rejected with 482; when that transaction ends, the first one's 2xx must still be
    # acknowledged by its ACK.
    h = Harness()
    first = server_invite(h, build_request())
    errors: list[str] = []
    first.on_error = errors.append
    first.reply(200, to_tag="bob-tag")
    merged = build_request(branch="z9hG4bK-via-b", sent_by="192.0.2.99:5060", transport="TCP")
    assert h.layer.match(merged) is None
    second = server_invite(h, merged, TCP)
    second.reply(482, to_tag="other-tag")
    h.layer.match(
        build_request(
            "ACK",
            cseq_method="ACK",
            branch="z9hG4bK-via-b",
            sent_by="192.0.2.99:5060",
            transport="TCP",
            to_tag="other-tag",
        )
    )
    h.clock.advance(0)
    assert second.state is State.TERMINATED

    h.at(1.0)
    assert h.layer.match(build_request("ACK", branch="z9hG4bK-ack", to_tag="bob-tag")) is None
    assert first.acked
    h.at(100.0)
    assert h.response_times(200) == [0.0, 0.5]
    assert errors == []


# -- non-INVITE server transaction (17.2.2)


def test_non_invite_server_repeats_the_last_response_then_timer_j() -> None:
    h = Harness()
    request = build_request("BYE", branch="z9hG4bK-bye-s", to_tag="bob-tag", cseq=2)
    tx = server_non_invite(h, request)
    assert tx.state is State.TRYING
    assert h.sent == []  # no automatic 100 for non-INVITE
    assert h.layer.match(request) is tx  # retransmission in Trying: absorbed, silent
    assert h.sent == []

    tx.reply(100)
    assert tx.state is State.PROCEEDING
    assert h.layer.match(request) is tx
    assert h.statuses() == [100, 100]

    h.at(1.0)
    ok = tx.reply(200)
    assert tx.state is State.COMPLETED
    tx.reply(500)  # a second final is ignored
    assert h.statuses() == [100, 100, 200]
    h.at(20.0)
    assert h.statuses() == [100, 100, 200]  # no timer retransmits a non-INVITE final
    assert h.layer.match(request) is tx
    assert h.statuses() == [100, 100, 200, 200]
    assert h.sent[-1].message is ok
    assert h.sent[-1].target == UDP

    h.at(33.0 - TINY)  # timer J = 64*T1 after the final
    assert tx.state is State.COMPLETED
    h.at(33.0)
    assert tx.state is State.TERMINATED
    assert h.layer.match(request) is None  # now a new request


def test_non_invite_server_tcp_timer_j_zero() -> None:
    h = Harness()
    request = build_request("OPTIONS", branch="z9hG4bK-opt-s", transport="TCP")
    tx = server_non_invite(h, request, TCP)
    tx.reply(200)
    assert tx.state is State.COMPLETED
    h.clock.advance(0)
    assert tx.state is State.TERMINATED
    assert h.layer.counts() == (0, 0)


# -- matching (17.1.3, 17.2.3)


def test_responses_match_by_branch_and_cseq_method() -> None:
    h = Harness()
    invite = build_request(branch="z9hG4bK-m1")
    tx = h.invite(invite)
    h.layer.receive_response(build_response(invite, 180))
    tx.cancel()
    [cancel] = h.requests("CANCEL")

    # Same branch, another method: not this transaction.
    bye = build_request("BYE", branch="z9hG4bK-m1", to_tag="bob-tag")
    assert h.layer.receive_response(build_response(bye, 200)) is False
    # Same method, another branch: not this transaction.
    assert h.layer.receive_response(with_branch(build_response(invite, 486), "z9hG4bK-m2")) is False
    assert tx.state is State.PROCEEDING
    assert len(h.responses) == 1

    assert h.layer.receive_response(build_response(cancel, 200)) is True
    assert tx.state is State.PROCEEDING
    assert h.layer.receive_response(build_response(invite, 487)) is True
    assert tx.state is State.COMPLETED


def test_stray_response_is_not_matched() -> None:
    h = Harness()
    stray = build_response(build_request(branch="z9hG4bK-nobody"), 200)
    assert h.layer.receive_response(stray) is False
    assert h.responses == []
    assert h.sent == []


def test_cancel_is_its_own_server_transaction() -> None:
    h = Harness()
    invite = build_request()
    invite_tx = server_invite(h, invite)
    cancel = build_request("CANCEL")
    assert h.layer.match(cancel) is None  # a new request for the TU
    cancel_tx = h.layer.server(cancel, UDP)
    assert isinstance(cancel_tx, ServerNonInvite)
    assert cancel_tx is not invite_tx
    assert h.layer.invite_server_for(cancel) is invite_tx
    assert h.layer.counts() == (0, 2)

    # A CANCEL of another branch or another sent-by refers to no INVITE here.
    assert h.layer.invite_server_for(build_request("CANCEL", branch="z9hG4bK-zz")) is None
    other_host = build_request("CANCEL", sent_by="192.0.2.2:5060")
    assert h.layer.invite_server_for(other_host) is None
    assert h.layer.invite_server_for(build_request("CANCEL", sent_by="192.0.2.1:5070")) is None

    cancel_tx.reply(200)
    invite_tx.reply(487, to_tag="bob-tag")
    assert invite_tx.state is State.COMPLETED
    assert cancel_tx.state is State.COMPLETED
    assert h.layer.match(cancel) is cancel_tx  # CANCEL retransmission: its own 200 again
    assert h.statuses() == [100, 200, 487, 200]


def test_requests_with_another_sent_by_do_not_match() -> None:
    h = Harness()
    tx = server_invite(h, build_request(sent_by="192.0.2.1:5060"))
    assert h.layer.match(build_request(sent_by="192.0.2.1:5060")) is tx
    assert h.layer.match(build_request(sent_by="192.0.2.2:5060")) is None
    assert h.layer.match(build_request(sent_by="192.0.2.1:5062")) is None
    assert h.layer.match(build_request(branch="z9hG4bK-other")) is None
    ack = build_request("ACK", sent_by="192.0.2.2:5060", to_tag="x")
    assert h.layer.match(ack) is None
    # The sent-by host compares case-insensitively.
    tx2 = server_invite(h, build_request(branch="z9hG4bK-host", sent_by="UA.Example.COM"))
    assert h.layer.match(build_request(branch="z9hG4bK-host", sent_by="ua.example.com")) is tx2


def test_new_branch_has_the_magic_cookie_and_is_unique() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100
    assert all(b.startswith("z9hG4bK") and len(b) > len("z9hG4bK") + 8 for b in branches)


# -- transport failures (17.1.4)


def test_transport_failed_fails_pending_client_transactions_to_that_target() -> None:
    h = Harness()
    results: dict[str, list[str]] = {}

    def start(name: str, request: Request, target: Target) -> ClientTransaction:
        errors = results.setdefault(name, [])
        return h.layer.request(request, target, h.responses.append, errors.append)

    calling = start("calling", build_request(branch="z9hG4bK-t1"), UDP)
    proceeding_req = build_request(branch="z9hG4bK-t2", call_id="c2")
    proceeding = start("proceeding", proceeding_req, UDP)
    h.layer.receive_response(build_response(proceeding_req, 180))
    accepted_req = build_request(branch="z9hG4bK-t3", call_id="c3")
    accepted = start("accepted", accepted_req, UDP)
    h.layer.receive_response(build_response(accepted_req, 200))
    done_req = build_request("OPTIONS", branch="z9hG4bK-t4")
    done = start("done", done_req, UDP)
    h.layer.receive_response(build_response(done_req, 200))
    elsewhere = start("elsewhere", build_request("OPTIONS", branch="z9hG4bK-t5"), OTHER)

    h.layer.transport_failed(UDP)
    assert results == {
        "calling": ["transport error"],
        "proceeding": ["transport error"],
        "accepted": [],  # the 2xx reached the TU already: nothing is pending
        "done": [],
        "elsewhere": [],
    }
    assert calling.state is State.TERMINATED
    assert proceeding.state is State.TERMINATED
    assert accepted.state is State.ACCEPTED
    assert done.state is State.COMPLETED
    assert elsewhere.state is State.TRYING

    sent_before = len(h.sent)
    h.at(1.0)
    # Only the transaction to the other target retransmits.
    assert [s.target for s in h.sent[sent_before:]] == [OTHER]
    h.layer.transport_failed(UDP)  # again: nobody hears twice
    assert results["calling"] == ["transport error"]


def test_send_failure_fails_a_client_transaction_once_and_leaves_no_timer() -> None:
    h = Harness()
    h.broken.add(UDP)
    tx = h.invite(build_request())
    assert h.errors == ["transport error"]
    assert tx.state is State.TERMINATED
    assert h.layer.counts() == (0, 0)
    assert h.clock.pending() == 0


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_retransmission_failure_fails_once_and_leaves_no_timer(method: str) -> None:
    h = Harness()
    tx = h.client(build_request(method, branch=f"z9hG4bK-{method}"))
    h.broken.add(UDP)
    h.at(0.5)  # the first retransmission fails
    assert h.errors == ["transport error"]
    assert tx.state is State.TERMINATED
    assert h.clock.pending() == 0
    h.at(100)
    assert h.errors == ["transport error"]


def test_server_send_failure_terminates_without_leaving_timers() -> None:
    h = Harness()
    tx = server_invite(h, build_request())
    tx.reply(486, to_tag="bob-tag")
    h.broken.add(UDP)
    h.at(0.5)
    assert tx.state is State.TERMINATED
    assert h.clock.pending() == 0
    assert h.layer.counts() == (0, 0)
