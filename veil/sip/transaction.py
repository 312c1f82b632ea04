"""SIP transactions (RFC 3261 section 17, with the RFC 6026 "Accepted" states). Sans-I/O:
a transaction sends through a callback and keeps time through an injected scheduler.

The layer matches incoming messages to transactions (17.1.3, 17.2.3): retransmissions
are absorbed here and never reach the transaction user (TU).
"""

from __future__ import annotations

import contextlib
import enum
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from veil.sip.message import Headers, Request, Response, reason_for, response_to
from veil.sip.timing import Cancellable, Scheduler, SipTimers

MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes or came from. ``reliable`` transports need no retransmission."""

    transport: str  # "udp", "tcp" or "tls"
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


Send = Callable[[Request | Response | bytes, Target], None]
OnResponse = Callable[[Response], None]
OnError = Callable[[str], None]


class TransportError(Exception):
    """The message could not be handed to the transport (17.1.4)."""


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


class TransactionLayer:
    """All transactions of one SIP endpoint."""

    def __init__(self, send: Send, scheduler: Scheduler, timers: SipTimers | None = None) -> None:
        self.send = send
        self.scheduler = scheduler
        self.timers = timers or SipTimers()
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[tuple[str, str, int | None, str], ServerTransaction] = {}
        # INVITE server transactions that sent a 2xx, by dialog fields: the ACK for a 2xx
        # is a new transaction (its own branch), so it is matched by Call-ID and CSeq.
        self._accepted: dict[tuple[str, int], ServerInvite] = {}

    # -- client side
    def request(
        self,
        request: Request,
        target: Target,
        on_response: OnResponse,
        on_error: OnError,
    ) -> ClientTransaction:
        """Start a client transaction. The request's top Via must carry a fresh branch."""
        cls = ClientInvite if request.method == "INVITE" else ClientNonInvite
        tx = cls(self, request, target, on_response, on_error)
        self._clients[tx.key] = tx
        tx.start()
        return tx

    def receive_response(self, response: Response) -> bool:
        """Hand a response to its client transaction. False: no transaction matched (a
        stray or a 2xx retransmission after the transaction ended; the TU decides)."""
        via = response.top_via
        tx = self._clients.get((via.branch or "", response.cseq[1]))
        if tx is None:
            return False
        tx.receive(response)
        return True

    # -- server side
    @staticmethod
    def server_key(request: Request) -> tuple[str, str, int | None, str]:
        via = request.top_via
        method = "INVITE" if request.method == "ACK" else request.method
        host, port = via.sent_by()
        return via.branch or "", host, port, method

    def match(self, request: Request) -> ServerTransaction | None:
        """The existing server transaction of a request (a retransmission, an ACK for a
        non-2xx, or an ACK for a 2xx this endpoint is retransmitting), which absorbs it.
        None: the request is new and the TU should see it."""
        tx = self._servers.get(self.server_key(request))
        if tx is not None:
            if (
                request.method == "ACK"
                and isinstance(tx, ServerInvite)
                and tx.state is State.ACCEPTED
            ):
                # An ACK for a 2xx that reuses the INVITE's branch: RFC 6026 passes ACKs
                # received in the Accepted state to the TU.
                tx.acknowledged()
                return None
            tx.receive(request)
            return tx
        if request.method == "ACK":
            accepted = self._accepted.get((request.call_id, request.cseq[0]))
            if accepted is not None:
                accepted.acknowledged()
        return None

    def server(self, request: Request, source: Target) -> ServerTransaction:
        """A server transaction for a new request (not for ACK)."""
        tx: ServerTransaction
        tx = (
            ServerInvite(self, request, source)
            if request.method == "INVITE"
            else ServerNonInvite(self, request, source)
        )
        self._servers[tx.key] = tx
        tx.start()
        return tx

    def invite_server_for(self, cancel: Request) -> ServerInvite | None:
        """The INVITE transaction a CANCEL refers to (9.2: same branch and sent-by)."""
        branch, host, port, _ = self.server_key(cancel)
        tx = self._servers.get((branch, host, port, "INVITE"))
        return tx if isinstance(tx, ServerInvite) else None

    def transport_failed(self, target: Target) -> None:
        """A connection to ``target`` failed: its client transactions fail now (17.1.4)."""
        for tx in list(self._clients.values()):
            # Accepted: the 2xx reached the TU already, nothing is pending (RFC 6026).
            pending = tx.state not in (State.ACCEPTED, State.COMPLETED, State.TERMINATED)
            if tx.target == target and pending:
                tx.fail("transport error")

    # -- bookkeeping
    def _forget(self, tx: Transaction) -> None:
        if isinstance(tx, ClientTransaction):
            self._clients.pop(tx.key, None)
        elif isinstance(tx, ServerTransaction):
            self._servers.pop(tx.key, None)
            # Another transaction may hold the key (a merged request, 8.2.2.2).
            if isinstance(tx, ServerInvite) and self._accepted.get(tx.dialog_key) is tx:
                del self._accepted[tx.dialog_key]

    def counts(self) -> tuple[int, int]:
        return len(self._clients), len(self._servers)


class Transaction:
    state: State

    def __init__(self, layer: TransactionLayer, request: Request, target: Target) -> None:
        self.layer = layer
        self.request = request
        self.target = target
        self._timers: dict[str, Cancellable] = {}
        self.state = State.TRYING

    @property
    def timers(self) -> SipTimers:
        return self.layer.timers

    def _start_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._stop_timer(name)
        if self.state is State.TERMINATED:
            return  # e.g. a retransmission whose send failed just terminated us
        self._timers[name] = self.layer.scheduler.call_later(delay, callback)

    def _stop_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _send(self, message: Request | Response) -> bool:
        try:
            self.layer.send(message, self.target)
        except TransportError:
            self._transport_error()
            return False
        return True

    def _transport_error(self) -> None:
        self.terminate()

    def terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.layer._forget(self)


class ClientTransaction(Transaction):
    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        target: Target,
        on_response: OnResponse,
        on_error: OnError,
    ) -> None:
        super().__init__(layer, request, target)
        self.on_response = on_response
        self.on_error = on_error
        self.key = (request.top_via.branch or "", request.method)

    def start(self) -> None:
        raise NotImplementedError

    def receive(self, response: Response) -> None:
        raise NotImplementedError

    def fail(self, reason: str) -> None:
        """Timeout or transport error: the TU hears it once, as if a 408/503 arrived."""
        if self.state is State.TERMINATED:
            return
        self.terminate()
        self.on_error(reason)

    def _transport_error(self) -> None:
        self.fail("transport error")


class ClientInvite(ClientTransaction):
    """17.1.1: Calling -> Proceeding -> Accepted (2xx) / Completed (3xx-6xx)."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        target: Target,
        on_response: OnResponse,
        on_error: OnError,
    ) -> None:
        super().__init__(layer, request, target, on_response, on_error)
        self._cancel_reason: str | None = None
        # The ACKs sent for this INVITE's 2xx responses, by To tag, with where they went.
        self.acks: dict[str, tuple[bytes, Target]] = {}
        self._a = self.timers.t1
        self._cancel: Request | None = None
        self._cancel_pending = False
        self.final: Response | None = None

    def start(self) -> None:
        self.state = State.CALLING
        if not self._send(self.request):
            return
        if not self.target.reliable:
            self._start_timer("A", self._a, self._timer_a)
        self._start_timer("B", self.timers.b, lambda: self.fail("timeout"))

    def _timer_a(self) -> None:
        if self.state is State.CALLING:
            self._a *= 2
            self._send(self.request)
            self._start_timer("A", self._a, self._timer_a)

    def receive(self, response: Response) -> None:
        status = response.status
        if self.state in (State.CALLING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                self._stop_timer("A")
                self._stop_timer("B")
                if self._cancel_pending:
                    self._send_cancel()
                self.on_response(response)
            elif status < 300:
                self.final = response
                self.state = State.ACCEPTED
                self._stop_timers_for_final()
                self._start_timer("M", self.timers.b, self.terminate)
                self.on_response(response)
            else:
                self.final = response
                self.state = State.COMPLETED
                self._stop_timers_for_final()
                self._send(self._ack_for(response))
                delay = 0.0 if self.target.reliable else self.timers.d_unreliable
                self._start_timer("D", delay, self.terminate)
                self.on_response(response)
        elif self.state is State.ACCEPTED and 200 <= status < 300:
            sent = self.acks.get(response.to.tag or "")
            if sent is not None:
                # A retransmitted 2xx: our ACK was lost. Sent again from here (13.2.2.4
                # gives this to the UAC core), so it works after the call has ended.
                with contextlib.suppress(TransportError):
                    self.layer.send(*sent)
            else:  # another fork's 2xx, or one the TU has not acknowledged yet
                self.on_response(response)
        elif self.state is State.COMPLETED and status >= 300:
            self._send(self._ack_for(response))

    def _stop_timers_for_final(self) -> None:
        for name in ("A", "B", "C"):
            self._stop_timer(name)

    def _ack_for(self, response: Response) -> Request:
        """17.1.1.3: the ACK for a non-2xx final response is part of this transaction."""
        return self._sibling("ACK", response.headers.get("To") or "")

    def _sibling(self, method: str, to: str) -> Request:
        """The ACK or CANCEL of this INVITE (9.1, 17.1.1.3): its Request-URI, top Via
        (so its branch), Route, From, Call-ID and CSeq number."""
        request = self.request
        headers = Headers()
        headers.add("Via", request.headers.values("Via")[0])
        for route in request.headers.raw_values("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", request.headers.get("From") or "")
        headers.add("To", to)
        headers.add("Call-ID", request.call_id)
        headers.add("CSeq", f"{request.cseq[0]} {method}")
        return Request(headers, b"", method, request.uri)

    def cancel(self, reason: str | None = None) -> None:
        """Send CANCEL (9.1): not before a provisional response arrived, and not after a
        final one. Its outcome comes as this transaction's final response (487)."""
        if self.state is State.CALLING:
            self._cancel_pending = True
            self._cancel_reason = reason
            return
        self._cancel_reason = reason
        if self.state is State.PROCEEDING and self._cancel is None:
            self._send_cancel()

    def _send_cancel(self) -> None:
        self._cancel_pending = False
        self._cancel = self._sibling("CANCEL", self.request.headers.get("To") or "")
        if self._cancel_reason:
            self._cancel.headers.add("Reason", self._cancel_reason)
        self.layer.request(self._cancel, self.target, lambda _r: None, lambda _e: None)
        # If the far end never answers the INVITE after CANCEL, give up (RFC 3261 9.1:
        # "the client SHOULD wait 64*T1 ... then consider the transaction terminated").
        self._start_timer("C", self.timers.b, lambda: self.fail("timeout"))


class ClientNonInvite(ClientTransaction):
    """17.1.2: Trying -> Proceeding -> Completed."""

    def start(self) -> None:
        self.state = State.TRYING
        self._e = self.timers.t1
        if not self._send(self.request):
            return
        if not self.target.reliable:
            self._start_timer("E", self._e, self._timer_e)
        self._start_timer("F", self.timers.b, lambda: self.fail("timeout"))

    def _timer_e(self) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self._send(self.request)
            self._e = (
                self.timers.t2
                if self.state is State.PROCEEDING
                else min(2 * self._e, self.timers.t2)
            )
            self._start_timer("E", self._e, self._timer_e)

    def receive(self, response: Response) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return  # retransmitted final: absorbed in Completed
        if response.status < 200:
            if self.state is State.TRYING:
                self.state = State.PROCEEDING
            self.on_response(response)
            return
        self.state = State.COMPLETED
        self._stop_timer("E")
        self._stop_timer("F")
        delay = 0.0 if self.target.reliable else self.timers.t4
        self._start_timer("K", delay, self.terminate)
        self.on_response(response)


class ServerTransaction(Transaction):
    def __init__(self, layer: TransactionLayer, request: Request, source: Target) -> None:
        super().__init__(layer, request, source)
        self.key = TransactionLayer.server_key(request)
        self._tag: str | None = None
        self.last_response: Response | None = None
        self.on_error: OnError = lambda _reason: None

    def start(self) -> None:
        raise NotImplementedError

    def receive(self, request: Request) -> None:
        raise NotImplementedError

    def respond(self, response: Response) -> None:
        raise NotImplementedError

    def reply(
        self,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """Build and send a response with the request's mandatory headers (8.2.6.2), a
        request without a To tag getting this transaction's own, then ``headers``."""
        response = response_to(
            self.request, status, reason or reason_for(status), to_tag=to_tag or self.tag
        )
        for name, value in headers:
            response.headers.add(name, value)
        response.body = body
        self.respond(response)
        return response

    @property
    def tag(self) -> str:
        """The To tag of this transaction's responses (the same on every one of them)."""
        if self._tag is None:
            self._tag = secrets.token_hex(6)
        return self._tag

    @property
    def finished(self) -> bool:
        return self.state not in (State.TRYING, State.PROCEEDING)


class ServerInvite(ServerTransaction):
    """17.2.1 with RFC 6026: Proceeding -> Accepted (2xx, retransmitted until the ACK)
    / Completed (3xx-6xx) -> Confirmed."""

    def __init__(self, layer: TransactionLayer, request: Request, source: Target) -> None:
        super().__init__(layer, request, source)
        self.dialog_key = (request.call_id, request.cseq[0])
        self.acked = False
        self.cancelled = False

    def start(self) -> None:
        self.state = State.PROCEEDING
        # 100 Trying at once: routing a call waits for the database (17.2.1).
        self.reply(100)

    def receive(self, request: Request) -> None:
        if request.method == "INVITE":
            if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response:
                self._send(self.last_response)
        elif request.method == "ACK" and self.state is State.COMPLETED:
            self.state = State.CONFIRMED
            self._stop_timer("G")
            self._stop_timer("H")
            delay = 0.0 if self.target.reliable else self.timers.t4
            self._start_timer("I", delay, self.terminate)

    def respond(self, response: Response) -> None:
        if self.state is not State.PROCEEDING:
            return  # a final response was sent already
        self.last_response = response
        status = response.status
        if not self._send(response):
            return
        if status < 200:
            return
        if status < 300:
            # The 2xx is retransmitted with timer G's schedule until the ACK (13.3.1.4).
            self.state = State.ACCEPTED
            self.layer._accepted[self.dialog_key] = self
            self._g = self.timers.t1
            if not self.target.reliable:
                self._start_timer("G", self._g, self._timer_g)
            # Timer H here is also RFC 6026's timer L: the transaction stays Accepted
            # for 64*T1 after the ACK stopped retransmissions, absorbing INVITEs.
            self._start_timer("H", self.timers.b, self._no_ack)
        else:
            self.state = State.COMPLETED
            self._g = self.timers.t1
            if not self.target.reliable:
                self._start_timer("G", self._g, self._timer_g)
            self._start_timer("H", self.timers.b, self._no_ack)

    def _timer_g(self) -> None:
        if self.state in (State.ACCEPTED, State.COMPLETED) and self.last_response:
            self._send(self.last_response)
            self._g = min(2 * self._g, self.timers.t2)
            self._start_timer("G", self._g, self._timer_g)

    def _no_ack(self) -> None:
        # Timer H in Completed (17.2.1: the TU is told of the failure) or, in Accepted,
        # no ACK for our 2xx (13.3.1.4: the UAS should end the dialog with BYE). In
        # Accepted after the ACK it is timer L: a quiet end.
        unacknowledged = self.state is State.COMPLETED or (
            self.state is State.ACCEPTED and not self.acked
        )
        self.terminate()
        if unacknowledged:
            self.on_error("no ACK")

    def acknowledged(self) -> None:
        """The ACK for our 2xx arrived (it reaches the TU as well): retransmissions
        stop. The transaction stays Accepted until timer L (RFC 6026), so a late
        INVITE retransmission is still absorbed rather than taken for a new call."""
        if self.state is State.ACCEPTED and not self.acked:
            self.acked = True
            self._stop_timer("G")


class ServerNonInvite(ServerTransaction):
    """17.2.2: Trying -> Proceeding -> Completed."""

    def start(self) -> None:
        self.state = State.TRYING

    def receive(self, request: Request) -> None:
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response:
            self._send(self.last_response)

    def respond(self, response: Response) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        self.last_response = response
        if not self._send(response):
            return
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        delay = 0.0 if self.target.reliable else self.timers.b
        self._start_timer("J", delay, self.terminate)
