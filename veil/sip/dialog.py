"""SIP dialogs (RFC 3261 section 12): the state two user agents share after an INVITE,
and the requests built inside one. Sans-I/O."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from veil.sip.grammar import Address, SipUri, parse_address
from veil.sip.message import Headers, Request, Response
from veil.sip.transaction import new_branch


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id() -> str:
    # Random only: a Call-ID must not carry a host name or anything about a party.
    return secrets.token_hex(16)


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local: Address  # our From/To address, without tag
    remote: Address  # theirs, without tag
    remote_target: SipUri  # their Contact
    route_set: list[str] = field(default_factory=list)  # Route values, in order
    local_seq: int = 0
    remote_seq: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """12.1.2: from our INVITE and a 2xx or 1xx-with-tag response to it."""
        contact = response.contact
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag or "",
            local=_without_tag(request.from_),
            remote=_without_tag(response.to),
            remote_target=contact.uri if contact else request.uri,
            route_set=list(reversed(response.headers.values("Record-Route"))),
            local_seq=request.cseq[0],
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """12.1.1: from a received INVITE and the To tag we answer with."""
        contact = request.contact
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local=_without_tag(request.to),
            remote=_without_tag(request.from_),
            remote_target=contact.uri if contact else request.from_.uri,
            route_set=request.headers.values("Record-Route"),
            local_seq=0,
            remote_seq=request.cseq[0],
        )

    def next_hop(self) -> SipUri:
        """Where requests of this dialog go: the first route, else the remote target."""
        if self.route_set:
            return parse_address(self.route_set[0]).uri
        return self.remote_target

    def request(
        self,
        method: str,
        *,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Request:
        """A request inside the dialog (12.2.1.1) with a fresh branch; CSeq advances
        except for ACK and CANCEL, which reuse the INVITE's number (``cseq``)."""
        if cseq is None:
            if method in ("ACK", "CANCEL"):
                raise ValueError(f"{method} takes the CSeq number of the INVITE it answers")
            self.local_seq += 1
            cseq = self.local_seq
        uri = self.remote_target
        routes = list(self.route_set)
        if routes and "lr" not in parse_address(routes[0]).uri.params:
            # Strict routing (12.2.1.1): the first route becomes the Request-URI.
            uri = parse_address(routes[0]).uri
            routes = [*routes[1:], f"<{self.remote_target}>"]
        headers = Headers()
        headers.add("Via", f"SIP/2.0/UDP 0.0.0.0;branch={new_branch()}")  # set on send
        for route in routes:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", str(_with_tag(self.local, self.local_tag)))
        headers.add("To", str(_with_tag(self.remote, self.remote_tag)))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if contact and method in ("INVITE", "UPDATE"):
            headers.add("Contact", contact)
        for name, value in extra or ():
            headers.add(name, value)
        if content_type and body:
            headers.add("Content-Type", content_type)
        return Request(headers, body, method, uri)

    def accepts(self, request: Request) -> bool:
        """12.2.2: a request with a lower CSeq than the last one is out of order (500)."""
        number = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and number <= self.remote_seq:
            # Equal is a retransmission the transaction layer already absorbed, or a
            # stale request: either way not a new one.
            return False
        self.remote_seq = number
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE, UPDATE and their 2xx) may move the remote target."""
        contact = message.contact
        if contact is not None:
            self.remote_target = contact.uri


def _with_tag(address: Address, tag: str) -> Address:
    """An empty tag (a peer without one, 12.1.1) is left out, not sent as ``;tag=``."""
    return address.with_tag(tag) if tag else address


def _without_tag(address: Address) -> Address:
    params = {k: v for k, v in address.params.items() if k != "tag"}
    return Address(address.uri, address.display, params)
