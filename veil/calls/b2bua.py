"""The masking back-to-back user agent: the SIP handler that admits requests (trusted
sources only), starts a ``Call`` for each INVITE to a virtual number, and routes
in-dialog requests, CANCELs and stray responses to the call they belong to."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from veil.calls.call import ALLOW, Call, Side
from veil.calls.media import MediaEngine
from veil.calls.recorder import Recorder
from veil.media.prompts import Prompts
from veil.service.context import ServiceContext
from veil.sip import digest
from veil.sip.dialog import Dialog
from veil.sip.endpoint import SipEndpoint
from veil.sip.errors import ParseError
from veil.sip.grammar import SipUri, parse_uri
from veil.sip.message import Request, Response
from veil.sip.transaction import ServerTransaction, Target
from veil.webhooks.ask import CustomerAsker

log = logging.getLogger("veil.calls")

NETWORK = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class CallSettings:
    trunk: SipUri | None  # where leg B goes (VEIL_TRUNK_OUTBOUND)
    username: str | None = None
    password: str | None = None
    allow: tuple[NETWORK, ...] = (ipaddress.ip_network("127.0.0.1/32"),)

    @classmethod
    def parse(
        cls,
        trunk: str | None,
        username: str | None,
        password: str | None,
        allow: str,
    ) -> CallSettings:
        networks = tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in allow.split(",")
            if part.strip()
        )
        return cls(parse_uri(trunk) if trunk else None, username, password, networks)

    def trusted(self, host: str) -> bool:
        """Whether ``host`` may send requests: an allowed network, or the outbound trunk
        (whose side of a call sends BYE, re-INVITE, INFO)."""
        if self.trunk is not None and host == self.trunk.host.strip("[]"):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.allow)


@dataclass
class B2bua:
    """The SIP handler: owns the endpoint and the calls in progress."""

    ctx: ServiceContext
    settings: CallSettings
    media: MediaEngine
    host: str = "127.0.0.1"
    port: int = 5060
    # What the media features need (None without a media engine).
    prompts: Prompts | None = None
    recorder: Recorder | None = None
    asker: CustomerAsker | None = None  # Infobip-style numbers' callbackUrl
    recordings_dir: Path = Path("recordings")
    endpoint: SipEndpoint = field(init=False)
    calls: dict[tuple[str, str, int | None, str], Call] = field(init=False, default_factory=dict)
    dialogs: dict[tuple[str, str], tuple[Call, Side]] = field(init=False, default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.endpoint = SipEndpoint(self.host, self.port, self, trusted=self.settings.trusted)

    async def start(self) -> None:
        await self.endpoint.start()
        trunk = self.settings.trunk
        log.info(
            "SIP on %s:%d (UDP, TCP); outbound trunk %s",
            self.endpoint.host,
            self.endpoint.port,
            trunk if trunk is not None else "not configured: calls are refused 503",
        )

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` as a task the B2BUA tracks (cancelled on close)."""

        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.endpoint.close()

    def with_credentials(self, request: Request, response: Response) -> bool:
        """Turn ``request`` into its retry with the answer to the 401/407 challenge in
        ``response``. False when there are no credentials or no usable challenge."""
        settings = self.settings
        if not settings.username:
            return False
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = digest.pick_challenge(response.headers.raw_values(header))
        if challenge is None:
            return False
        number = request.cseq[0] + 1
        request.headers.set("CSeq", f"{number} INVITE")
        request.headers.set("Via", "SIP/2.0/UDP 0.0.0.0")  # new branch on send
        answer_header = "Authorization" if response.status == 401 else "Proxy-Authorization"
        request.headers.set(
            answer_header,
            digest.authorization(
                challenge,
                method="INVITE",
                uri=str(request.uri),
                username=settings.username,
                password=settings.password or "",
                body=request.body,
            ),
        )
        return True

    def start_call(self, call: Call) -> None:
        self.spawn(call.main())

    def register(self, dialog: Dialog, call: Call, side: Side) -> None:
        self.dialogs[(dialog.call_id, dialog.local_tag)] = (call, side)

    def forget(self, call: Call) -> None:
        if call.a_tx is not None:
            self.calls.pop(call.a_tx.key, None)
        for leg in (call.a, call.b):
            if leg.dialog is not None:
                self.dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)

    def active_calls(self) -> int:
        return len(self.calls)

    # -- Handler
    def on_request(self, request: Request, tx: ServerTransaction, source: Target) -> None:
        if not self.settings.trusted(source.host):
            tx.reply(403, "Forbidden")
            return
        if request.to.tag:
            self._in_dialog(request, tx)
            return
        method = request.method
        if method == "INVITE":
            call = Call(self, request, tx)
            self.calls[tx.key] = call
            tx.on_error = call.deliver(Call.on_no_ack)
            self.start_call(call)
        elif method == "CANCEL":
            invite_tx = self.endpoint.transactions.invite_server_for(request)
            if invite_tx is None:
                tx.reply(481)
                return
            tx.reply(200)
            cancelled = self.calls.get(invite_tx.key)
            if cancelled is not None and not cancelled.a_final_sent:
                cancelled.on_cancel()
        elif method == "OPTIONS":
            tx.reply(200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])
        elif method in ("BYE", "INFO", "UPDATE", "ACK"):
            tx.reply(481)
        else:
            tx.reply(405, headers=[("Allow", ALLOW)])

    def _in_dialog(self, request: Request, tx: ServerTransaction) -> None:
        found = self.dialogs.get((request.call_id, request.to.tag or ""))
        if found is None:
            tx.reply(481)
            return
        call, side = found
        call.post(lambda: call.in_dialog(side, request, tx))

    def on_ack(self, request: Request, source: Target) -> None:
        found = self.dialogs.get((request.call_id, request.to.tag or ""))
        if found is not None:
            call, side = found
            call.on_ack(side, request)

    def on_stray_response(self, response: Response) -> None:
        """A 2xx retransmission after the INVITE transaction ended: re-ACK it."""
        try:
            method = response.cseq[1]
        except ParseError:
            return
        if method != "INVITE" or not 200 <= response.status < 300:
            return
        found = self.dialogs.get((response.call_id, response.from_.tag or ""))
        if found is not None:
            call, side = found
            if side is Side.B:

                async def ack() -> None:
                    call._ack_b(response)

                call.post(ack)
