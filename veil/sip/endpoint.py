"""A SIP endpoint on asyncio: transports + transaction layer + dispatch to a handler.

Receiving (RFC 3261 18.2.1, 18.1.2): unparseable requests get 400 when enough is
readable; Via gets ``received``/``rport``; retransmissions are absorbed by the
transaction layer; new requests and ACKs for 2xx go to the handler. Sending: the
endpoint writes the top Via (its own address and transport, a fresh branch, ``rport``).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from collections.abc import Callable
from typing import Protocol

from veil.sip.errors import ParseError
from veil.sip.grammar import SipUri, Via, parse_via
from veil.sip.message import (
    Request,
    Response,
    parse_message,
    parse_partial,
    reason_for,
    response_to,
)
from veil.sip.timing import SipTimers
from veil.sip.transaction import (
    ClientInvite,
    ClientTransaction,
    OnError,
    OnResponse,
    ServerTransaction,
    Target,
    TransactionLayer,
    TransportError,
    new_branch,
)
from veil.sip.transport import DatagramTransport, StreamTransport

log = logging.getLogger("veil.sip")

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
SUPPORTED: frozenset[str] = frozenset()  # option tags Veil implements (none required yet)


class Handler(Protocol):
    """The transaction user: what the endpoint hands upwards."""

    def on_request(self, request: Request, tx: ServerTransaction, source: Target) -> None: ...

    def on_ack(self, request: Request, source: Target) -> None: ...

    def on_stray_response(self, response: Response) -> None: ...


def target_for(uri: SipUri) -> Target:
    """The next hop for a URI with a literal address (18.1.1, 19.1.1 defaults). Veil
    routes to configured trunks and to Contacts, so no DNS (RFC 3263) is done here."""
    transport = uri.transport
    host = uri.params.get("maddr") or uri.host
    host = host.strip("[]")
    port = uri.port or DEFAULT_PORTS.get(transport, 5060)
    return Target(transport, host, port)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class SipEndpoint:
    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        timers: SipTimers | None = None,
        trusted: Callable[[str], bool] = lambda _host: True,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.trusted = trusted
        self._timers = timers
        self.udp = DatagramTransport(self._on_data)
        self.tcp = StreamTransport(self._on_data, self._on_failure)
        self.layer: TransactionLayer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.layer = TransactionLayer(self._send, loop, self._timers)
        self.host, self.port = await self.udp.start(self.host, self.port)
        await self.tcp.start(self.host, self.port)

    async def close(self) -> None:
        self.udp.close()
        self.tcp.close()
        await self.tcp.wait_closed()

    @property
    def transactions(self) -> TransactionLayer:
        assert self.layer is not None, "endpoint not started"
        return self.layer

    def contact(self, transport: str = "udp") -> str:
        """Our Contact: address only, nothing about a party."""
        param = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:{self._host_text()}:{self.port}{param}>"

    def _host_text(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    # -- sending
    def request(
        self, request: Request, target: Target, on_response: OnResponse, on_error: OnError
    ) -> ClientTransaction:
        """Send a request in a new client transaction: our Via on top."""
        self._set_via(request, target)
        return self.transactions.request(request, target, on_response, on_error)

    def send_ack(self, ack: Request, target: Target, invite: ClientInvite | None = None) -> None:
        """An ACK for a 2xx is sent outside any transaction (13.2.2.4); given the
        ``invite`` transaction, it is sent again on that 2xx's retransmissions."""
        self._set_via(ack, target)
        data = bytes(ack)
        if invite is not None:
            invite.acks[ack.to.tag or ""] = (data, target)
        try:
            self._send(data, target)
        except TransportError as exc:
            log.info("ACK to %s not sent: %s", target, exc)

    def _set_via(self, request: Request, target: Target) -> None:
        branch = new_branch()
        vias = request.headers.raw_values("Via")
        if vias and "branch=" in vias[0]:
            branch = vias[0].split("branch=", 1)[1].split(";", 1)[0].split(",", 1)[0]
        request.headers.remove("Via")
        request.headers.prepend(
            "Via",
            f"SIP/2.0/{target.transport.upper()} {self._host_text()}:{self.port}"
            f";branch={branch};rport",
        )

    def _send(self, message: Request | Response | bytes, target: Target) -> None:
        data = bytes(message)
        if target.transport == "udp":
            self.udp.send(data, target)
        elif target.transport == "tcp":
            self.tcp.send(data, target)
        else:
            raise TransportError(f"transport {target.transport} not available")

    # -- receiving
    def _on_failure(self, target: Target) -> None:
        if self.layer is not None:
            self.layer.transport_failed(target)

    def _on_data(self, data: bytes, source: Target, stream: bool) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            message = parse_message(data, stream=stream)
        except ParseError as exc:
            self._bad_message(data, source, exc)
            return
        try:
            if isinstance(message, Response):
                self._on_response(message)
            else:
                self._on_request(message, source)
        except ParseError as exc:
            self._bad_message(data, source, exc)
        except Exception:
            # One bad message must never take the endpoint down.
            log.exception("error handling a message from %s", source)

    def _bad_message(self, data: bytes, source: Target, exc: ParseError) -> None:
        log.info("bad message from %s: %s", source, exc)
        partial = parse_partial(data)
        if partial is None or partial.method == "ACK":
            return
        try:
            self._stamp_via(partial, source)
        except ParseError:
            return
        # A tag derived from the request, so that its retransmissions get the same one.
        seed = f"{partial.headers.get('Via')}|{partial.headers.get('Call-ID')}"
        tag = hashlib.sha256(seed.encode()).hexdigest()[:12]
        response = response_to(partial, exc.status, reason_for(exc.status), to_tag=tag)
        reason = str(exc).replace("\r", " ").replace("\n", " ").replace('"', "'")[:100]
        response.headers.add("Warning", f'399 veil "{reason}"')
        try:
            via = partial.top_via
            target = source if source.reliable else _response_target(via, source)
            self._send(response, target)
        except (ParseError, TransportError):
            pass

    def _on_response(self, response: Response) -> None:
        via = response.top_via
        if (via.port or 5060) != self.port:
            return  # 18.1.2: not ours, discard
        if not self.transactions.receive_response(response):
            self.handler.on_stray_response(response)

    def _on_request(self, request: Request, source: Target) -> None:
        via = request.top_via
        self._stamp_via(request, source)
        if source.reliable and self.trusted(source.host):
            # Requests towards a trusted peer's own listening address (its Via and
            # Contact, on the same host as the connection) reuse its connection. A peer
            # can never claim another host's address this way.
            sent_by = Target(source.transport, via.host.strip("[]"), via.port or 5060)
            self._alias(sent_by, source)
            contact = request.contact
            if contact is not None and contact.uri.scheme != "tel":
                self._alias(target_for(contact.uri), source)
        layer = self.transactions
        if layer.match(request) is not None:
            return  # a retransmission or an ACK for a non-2xx: absorbed
        if request.method == "ACK":
            self.handler.on_ack(request, source)
            return
        target = source if source.reliable else _response_target(request.top_via, source)
        tx = layer.server(request, target)
        required = [
            tag for tag in request.headers.values("Require") if tag.lower() not in SUPPORTED
        ]
        if required and request.method != "CANCEL":
            # 8.2.2.3: an extension the request requires and Veil lacks.
            tx.reply(420, headers=[("Unsupported", ", ".join(required))])
            return
        max_forwards = request.headers.get("Max-Forwards")
        if max_forwards is not None and int(max_forwards) == 0 and request.method != "OPTIONS":
            tx.reply(483)
            return
        self.handler.on_request(request, tx, source)

    def _alias(self, alias: Target, source: Target) -> None:
        if alias.host == source.host and alias.transport == source.transport:
            self.tcp.alias(alias, source)

    @staticmethod
    def _stamp_via(request: Request, source: Target) -> None:
        """18.2.1: ``received`` when the sent-by host is not the source, ``rport`` filled.
        The Via values are written back as one field (the same header, RFC 3261 7.3.1)."""
        values = request.headers.values("Via")
        via = parse_via(values[0])
        params = dict(via.params)
        if via.host.strip("[]") != source.host:
            params["received"] = source.host
        if "rport" in params:
            params["rport"] = str(source.port)
        values[0] = str(Via(via.transport, via.host, via.port, params))
        request.headers.set("Via", ", ".join(values))


def _response_target(via: Via, source: Target) -> Target:
    """18.2.2 with RFC 3581: back to the source address; to its port when ``rport`` is
    asked, else to the Via's port."""
    if "rport" in via.params:
        return source
    return Target(source.transport, source.host, via.port or 5060)
