"""One masked call: leg A (the call to a virtual number) and leg B (Veil's call to the
other party), bridged.

Leg B is *built*, never copied from leg A: its From and P-Asserted-Identity are the
virtual number, its Call-ID and tags are new, and only the body (neutralised SDP, DTMF)
crosses. The same holds for everything relayed back. Each call is a small actor: its SIP
events are queued to one task, so a call's messages are handled in order, and its
database work is queued behind the signalling, so it never holds a call up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import functools
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from veil.calls.media import MediaError, MediaSession
from veil.domain.calls import (
    MEDIA_UNAVAILABLE,
    NO_TRUNK,
    NOT_A_VIRTUAL_NUMBER,
    RELAYED_CONTENT_TYPES,
    RING_TIMEOUT,
    Bridge,
    HangupCause,
    LegEvent,
    LegStatus,
    Reject,
    Role,
    hangup_cause_for,
    leg_status_for,
    relay_status,
)
from veil.domain.ids import new_uuid
from veil.domain.phone import normalize_number
from veil.service import calls as call_service
from veil.sip.dialog import Dialog, new_call_id, new_tag
from veil.sip.endpoint import target_for
from veil.sip.errors import ParseError
from veil.sip.grammar import SipUri, parse_address
from veil.sip.message import Headers, Request, Response
from veil.sip.transaction import ClientInvite, ServerTransaction, Target

if TYPE_CHECKING:
    from veil.calls.b2bua import B2bua

log = logging.getLogger("veil.calls")
T = TypeVar("T")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
SERVER = ("Server", "Veil")


class Side(enum.Enum):
    A = "a"
    B = "b"

    @property
    def other(self) -> Side:
        return Side.B if self is Side.A else Side.A


class Phase(enum.Enum):
    ROUTING = "routing"
    DIALING = "dialing"
    UP = "up"
    ENDING = "ending"  # waiting for leg B's final response after a CANCEL
    ENDED = "ended"


@dataclass(slots=True)
class Leg:
    side: Side
    dialog: Dialog | None = None
    target: Target | None = None
    transport: str = "udp"
    # A relayed re-INVITE/UPDATE in flight on this leg (glare gets 491).
    busy: bool = False
    # That request came from this leg: its second offer gets 500 (RFC 3261 14.2).
    offering: bool = False
    # An ACK we owe this leg, sent when the other leg's ACK brings the SDP answer.
    deferred_ack: int | None = None
    # Our INVITE transaction on this leg, when Veil placed it: it re-sends our ACK.
    invite_tx: ClientInvite | None = None


class _Mailbox:
    """A call's event queue: a deque and at most one waiter. (``asyncio.Queue`` costs
    more to create than a whole call setup's other bookkeeping.)"""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Callable[[], Awaitable[None]]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Callable[[], Awaitable[None]]) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Callable[[], Awaitable[None]]:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Call:
    """One masked call: leg A (inbound) and leg B (to the other party)."""

    def __init__(self, b2bua: B2bua, invite: Request | None, tx: ServerTransaction | None) -> None:
        self.b2bua = b2bua
        self.invite = invite  # None when Veil placed both legs (``OutboundCall``)
        self.a_tx = tx
        self.a = Leg(Side.A, transport=tx.target.transport if tx else "udp")
        self.b = Leg(Side.B)
        self.a_tag = new_tag()
        self.phase = Phase.ROUTING
        self.cancelled = False
        self.a_final_sent = False
        self.b_request: Request | None = None
        self.b_tx: ClientInvite | None = None
        self.auth_tried = False
        self.rang = False
        self.interaction: call_service.Interaction | None = None
        self.media: MediaSession = b2bua.media.session(new_call_id())
        self._queue = _Mailbox()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ledger: asyncio.Task[None] | None = None
        self._closed = False  # the actor loop has ended

    # -- the actor
    def post(self, run: Callable[[], Awaitable[None]]) -> None:
        if self._closed:
            # A late message for an ended call (a 2xx retransmitted because our ACK was
            # lost, a response to our BYE): handled on its own, nothing waits for it.
            self.b2bua.spawn(self._late(run))
            return
        self._queue.put(run)

    async def _late(self, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except Exception:
            log.exception("late event of an ended call failed")

    def deliver(self, handler: Callable[[Any, T], Awaitable[None]]) -> Callable[[T], None]:
        """A transaction callback that queues ``handler(call, value)`` on this call. It
        holds the call weakly: transactions outlive calls by up to 32 s (RFC 3261's
        timers absorb retransmissions), and keeping every ended call's objects alive
        that long made the garbage collector's pauses the p99 of call setup."""
        ref = weakref.ref(self)

        def queue(value: T) -> None:
            call = ref()
            if call is not None:
                call.post(functools.partial(handler, call, value))

        return queue

    async def main(self) -> None:
        try:
            await self._route()
            while self.phase is not Phase.ENDED:
                event = await self._queue.get()
                await event()
        except asyncio.CancelledError:
            raise
        except MediaError as exc:
            log.warning("call failed: media engine: %s", exc)
            self._abort(MEDIA_UNAVAILABLE)
        except Exception:
            log.exception("call failed")
            self._abort()
        finally:
            self._closed = True
            self._cleanup()
            if self._ledger is not None:
                await asyncio.gather(self._ledger, return_exceptions=True)

    def _record(self, work: Callable[[], Awaitable[None]]) -> None:
        """Database bookkeeping, in order per call, off the signalling path."""
        previous = self._ledger

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await work()
            except Exception:
                log.exception("recording a call event failed")

        self._ledger = asyncio.get_running_loop().create_task(run())

    def _report(self, role: Role, kind: LegEvent) -> None:
        """A leg event for the session's callback (nothing to write without one)."""
        interaction = self.interaction
        if interaction is None or not interaction.session.settings.callback_url:
            return
        self._record(lambda: call_service.leg_event(self.b2bua.ctx, interaction, role, kind))

    # -- routing
    async def _route(self) -> None:
        invite = self.invite
        assert invite is not None
        called = normalize_number(invite.uri.user_unescaped)
        caller = self._caller_number(invite)
        decision: Bridge | Reject
        if called is None:
            decision = NOT_A_VIRTUAL_NUMBER
        else:
            decision = await call_service.route_call(self.b2bua.ctx, called, caller)
        if self.cancelled:
            self.phase = Phase.ENDED
            return
        if isinstance(decision, Reject):
            self._refuse(decision)
            self.phase = Phase.ENDED
            return
        if self.b2bua.settings.trunk is None:
            self._refuse(NO_TRUNK)
            self.phase = Phase.ENDED
            return
        now = self.b2bua.ctx.clock.now()
        interaction = call_service.Interaction(decision.session, decision.caller_role, now)
        interaction.leg_uuids[decision.caller_role] = new_uuid()
        interaction.leg_uuids[decision.caller_role.other] = new_uuid()
        self.interaction = interaction
        self._record(lambda: call_service.call_started(self.b2bua.ctx, interaction))
        await self._dial(decision)

    @staticmethod
    def _caller_number(invite: Request) -> str | None:
        """The caller: P-Asserted-Identity from a trusted trunk, else From."""
        for value in invite.headers.values("P-Asserted-Identity"):
            try:
                uri = parse_address(value).uri
            except ParseError:
                continue
            number = normalize_number(uri.user_unescaped)
            if number:
                return number
        return normalize_number(invite.from_.uri.user_unescaped)

    async def _dial(self, decision: Bridge) -> None:
        body = b""
        if self.invite is not None and self.invite.body and _is_sdp(self.invite):
            body = await self.media.offer(self.invite.body, from_leg="a")
        if self.cancelled:  # the CANCEL came while the media engine was asked
            self._cancelled_before_dial()
            return
        max_forwards = _max_forwards(self.invite) if self.invite is not None else 70
        self.b_request, self.b.target = self.outbound_invite(
            decision.session.virtual_number, decision.callee, body, max_forwards
        )
        self.b.transport = self.b.target.transport
        self.phase = Phase.DIALING
        self._send_b_invite()
        self._start_timer("ring", decision.session.settings.ring_timeout, self._ring_timeout)

    def outbound_invite(
        self, virtual: str, callee: str, body: bytes, max_forwards: int = 70
    ) -> tuple[Request, Target]:
        """A new INVITE to ``callee`` through the outbound trunk, from the virtual
        number. Built from nothing: no header of any other leg is copied."""
        b2bua = self.b2bua
        trunk = b2bua.settings.trunk
        assert trunk is not None
        target = target_for(trunk)
        local = b2bua.endpoint.host
        headers = Headers()
        headers.add("Via", "SIP/2.0/UDP 0.0.0.0")  # written by the endpoint
        headers.add("Max-Forwards", str(max_forwards))
        headers.add("From", f"<sip:{virtual}@{local}>;tag={new_tag()}")
        headers.add("To", f"<sip:{callee}@{trunk.host}>")
        headers.add("Call-ID", new_call_id())
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", b2bua.endpoint.contact(target.transport))
        headers.add("P-Asserted-Identity", f"<sip:{virtual}@{local}>")
        headers.add("Allow", ALLOW)
        if body:
            headers.add("Content-Type", "application/sdp")
        uri = SipUri(
            host=trunk.host,
            user=callee,
            port=trunk.port,
            params={k: v for k, v in trunk.params.items() if k == "transport"},
        )
        return Request(headers, body, "INVITE", uri), target

    def _send_b_invite(self) -> None:
        assert self.b_request is not None and self.b.target is not None
        tx = self.b2bua.endpoint.request(
            self.b_request,
            self.b.target,
            self.deliver(type(self)._b_response),
            self.deliver(type(self)._b_error),
        )
        assert isinstance(tx, ClientInvite)
        self.b_tx = self.b.invite_tx = tx

    # -- leg B's answers to our INVITE
    async def _b_response(self, response: Response) -> None:
        status = response.status
        if status == 100:
            return
        if 200 <= status < 300 and self.b.dialog is not None:
            if response.to.tag == self.b.dialog.remote_tag:
                # A retransmitted 2xx our ACK has not answered yet: with a late offer the
                # ACK waits for leg A's answer; otherwise send it (again).
                if self.b.deferred_ack is None:
                    self._ack_b(response)
            else:
                self._ack_and_bye(response)  # another fork answered too
            return
        if self.phase in (Phase.ENDING, Phase.ENDED):
            # The answer crossed our CANCEL: take it and hang it up; either way the
            # call is over.
            if 200 <= status < 300:
                self._ack_and_bye(response)
            if status >= 200:
                self._finish()
            return
        if status < 200:
            await self._b_provisional(response)
        elif status < 300:
            await self._b_answered(response)
        elif status in (401, 407) and self._retry_with_credentials(response):
            return
        else:
            self._b_failed(status, relay_status(status))

    async def _b_provisional(self, response: Response) -> None:
        body = b""
        if response.body and _is_sdp(response):
            body = await self.media.answer(response.body, from_leg="b")
        if not self.rang and self.interaction is not None:
            self.rang = True
            self._report(self.interaction.caller_role.other, LegEvent.RINGING)
        self._reply_a(response.status, response.reason, body=body)

    async def _b_answered(self, response: Response) -> None:
        assert self.b_request is not None and self.invite is not None
        self._stop_timer("ring")
        self.b.dialog = Dialog.as_uac(self.b_request, response)
        self.b.target = self._target_of(self.b.dialog, self.b.transport)
        self.b2bua.register(self.b.dialog, self, Side.B)
        late_offer = not self.invite.body
        if late_offer:
            # Leg B made the offer in its 2xx; its ACK must carry leg A's answer.
            body = await self.media.offer(response.body, from_leg="b") if response.body else b""
            self.b.deferred_ack = self.b_request.cseq[0]
        else:
            body = await self.media.answer(response.body, from_leg="b") if response.body else b""
            self._ack_b(response)
        self._reply_a(200, body=body)
        self.a.dialog = Dialog.as_uas(self.invite, self.a_tag)
        self.a.target = self._target_of(self.a.dialog, self.a.transport)
        self.b2bua.register(self.a.dialog, self, Side.A)
        self.phase = Phase.UP
        interaction = self.interaction
        if interaction is not None:
            interaction.answer_time = self.b2bua.ctx.clock.now()
            caller, callee = interaction.caller_role, interaction.caller_role.other
            interaction.statuses[caller] = LegStatus.COMPLETED
            interaction.statuses[callee] = LegStatus.COMPLETED
            self._report(callee, LegEvent.ANSWER)
            self._report(caller, LegEvent.ANSWER)
            self._start_time_limit()

    def _start_time_limit(self) -> None:
        if self.interaction is not None:
            limit = self.interaction.session.settings.call_time_limit
            self._start_timer("limit", limit, self._time_limit)

    def _retry_with_credentials(self, response: Response) -> bool:
        """Answer the outbound trunk's digest challenge once (RFC 3261 22.2)."""
        if self.auth_tried or self.b_request is None:
            return False
        self.auth_tried = True
        if not self.b2bua.with_credentials(self.b_request, response):
            return False
        self._send_b_invite()
        return True

    def _ack_b(self, response: Response) -> None:
        assert self.b.dialog is not None and self.b_request is not None
        self._send_ack(Side.B, self.b_request.cseq[0])

    def _b_failed(self, sip_status: int, relayed: int) -> None:
        self._stop_timer("ring")
        interaction = self.interaction
        if interaction is not None:
            status = leg_status_for(sip_status)
            interaction.statuses[interaction.caller_role.other] = status
            interaction.statuses[interaction.caller_role] = LegStatus.FAILED
            interaction.hangup_cause = hangup_cause_for(status, sip_status)
        self._reply_a(relayed)
        self._finish()

    async def _b_error(self, reason: str) -> None:
        if self.phase in (Phase.ENDING, Phase.ENDED):
            self._finish()
            return
        if self.phase is Phase.DIALING:
            self._b_failed(408 if reason == "timeout" else 503, 408 if reason == "timeout" else 503)

    # -- timers
    def _start_timer(self, name: str, seconds: float, action: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later(seconds, lambda: self.post(_async(action)))

    def _stop_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _ring_timeout(self) -> None:
        if self.phase is not Phase.DIALING:
            return
        interaction = self.interaction
        if interaction is not None:
            interaction.statuses[interaction.caller_role.other] = LegStatus.NO_ANSWER
            interaction.statuses[interaction.caller_role] = LegStatus.FAILED
            interaction.hangup_cause = HangupCause.RING_TIMEOUT
        self._refuse(RING_TIMEOUT)
        self._cancel_b()

    def _time_limit(self) -> None:
        if self.phase is not Phase.UP:
            return
        if self.interaction is not None:
            self.interaction.hangup_cause = HangupCause.TIME_LIMIT
        self._bye(Side.A)
        self._bye(Side.B)
        self._finish()

    # -- requests from the caller's side
    def on_cancel(self) -> None:
        """Leg A's CANCEL (already answered 200 by the B2BUA)."""
        self.cancelled = True
        if self.phase is Phase.ROUTING:
            self._reply_a(487)
            return
        self.post(_async(self._cancelled))

    def _cancelled_before_dial(self) -> None:
        interaction = self.interaction
        if interaction is not None:
            interaction.statuses[interaction.caller_role] = LegStatus.CANCELED
            interaction.hangup_cause = HangupCause.CANCELED
        self._finish()

    def _cancelled(self) -> None:
        if self.phase is not Phase.DIALING:
            return
        interaction = self.interaction
        if interaction is not None:
            interaction.statuses[interaction.caller_role] = LegStatus.CANCELED
            interaction.statuses[interaction.caller_role.other] = LegStatus.CANCELED
            interaction.hangup_cause = HangupCause.CANCELED
        self._reply_a(487)
        self._cancel_b()

    def _cancel_b(self) -> None:
        self._stop_timer("ring")
        if self.b_tx is not None:
            self.phase = Phase.ENDING
            self.b_tx.cancel()
        else:
            self._finish()

    async def in_dialog(self, side: Side, request: Request, tx: ServerTransaction) -> None:
        leg = self._leg(side)
        assert leg.dialog is not None
        if not leg.dialog.accepts(request):
            tx.reply(500)
            return
        method = request.method
        if method == "BYE":
            tx.reply(200)
            if self.phase is Phase.UP:
                if self.interaction is not None:
                    self.interaction.hung_up_by = self._role(side)
                self._bye(side.other)
                self._finish()
            return
        if method == "OPTIONS":
            self._reply(tx, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
            return
        if method not in ("INVITE", "UPDATE", "INFO"):
            self._reply(tx, 405, extra=[("Allow", ALLOW)])
            return
        if self.phase is not Phase.UP:
            tx.reply(491 if method in ("INVITE", "UPDATE") else 481)
            return
        other = self._leg(side.other)
        if method in ("INVITE", "UPDATE"):
            if leg.offering:
                # 14.2 (RFC 3311 5.2 for UPDATE): a new offer while this side's last one
                # is still unanswered is no glare: 500 with a random Retry-After.
                retry = str(secrets.randbelow(11))
                self._reply(tx, 500, extra=[("Retry-After", retry)])
                return
            if leg.busy or other.busy:
                tx.reply(491)
                return
            if request.contact is not None:
                leg.dialog.refresh_target(request)
                leg.target = self._target_of(leg.dialog, leg.transport)
            leg.busy = other.busy = True
            leg.offering = True
        body = b""
        content_type = request.headers.get("Content-Type")
        if request.body and content_type:
            media_type = content_type.split(";")[0].strip().lower()
            if media_type in RELAYED_CONTENT_TYPES:
                body = request.body
                if media_type == "application/sdp":
                    body = await self.media.offer(body, from_leg=side.value)
                    content_type = "application/sdp"
            else:
                content_type = None
        else:
            content_type = None
        self._relay_request(side, request, tx, body, content_type)

    def _relay_request(
        self,
        side: Side,
        request: Request,
        tx: ServerTransaction,
        body: bytes,
        content_type: str | None,
    ) -> None:
        other = self._leg(side.other)
        assert other.dialog is not None and other.target is not None
        method = request.method
        relayed = other.dialog.request(
            method,
            contact=self.b2bua.endpoint.contact(other.transport),
            body=body,
            content_type=content_type,
        )

        async def on_response(call: Call, response: Response) -> None:
            await call._relayed_response(side, request, tx, relayed, response)

        async def on_error(call: Call, reason: str) -> None:
            call._leg(side).busy = call._leg(side.other).busy = False
            call._leg(side).offering = False
            call._reply(tx, 408 if reason == "timeout" else 503)

        self.b2bua.endpoint.request(
            relayed, other.target, self.deliver(on_response), self.deliver(on_error)
        )

    async def _relayed_response(
        self,
        side: Side,
        request: Request,
        tx: ServerTransaction,
        relayed: Request,
        response: Response,
    ) -> None:
        """The other leg answered a request we relayed: answer the original one."""
        if response.status < 200 and response.status != 100 and not tx.finished:
            self._reply(tx, response.status, response.reason)
            return
        if response.status < 200:
            return
        other = self._leg(side.other)
        leg = self._leg(side)
        body = b""
        extra: list[tuple[str, str]] = []
        if response.body and _is_sdp(response):
            body = await self.media.answer(response.body, from_leg=side.other.value)
            extra.append(("Content-Type", "application/sdp"))
        if request.method in ("INVITE", "UPDATE"):
            leg.busy = other.busy = False
            leg.offering = False
            if 200 <= response.status < 300:
                extra.append(("Contact", self.b2bua.endpoint.contact(leg.transport)))
                if other.dialog is not None:
                    other.dialog.refresh_target(response)
                    other.target = self._target_of(other.dialog, other.transport)
        if request.method == "INVITE" and 200 <= response.status < 300:
            if request.body:
                self._send_ack(side.other, relayed.cseq[0])
            else:
                # Offerless re-INVITE: the answer comes in the requester's ACK.
                other.deferred_ack = relayed.cseq[0]
        self._reply(tx, response.status, response.reason, body=body, extra=extra)

    def on_ack(self, side: Side, request: Request) -> None:
        """An ACK for a 2xx we sent; pass on a deferred ACK with its SDP answer."""
        other = self._leg(side.other)
        if other.deferred_ack is None:
            return
        cseq = other.deferred_ack
        other.deferred_ack = None

        async def forward() -> None:
            body = b""
            if request.body and _is_sdp(request):
                body = await self.media.answer(request.body, from_leg=side.value)
            self._send_ack(side.other, cseq, body)

        self.post(forward)

    async def on_no_ack(self, _reason: str) -> None:
        """Leg A never acknowledged our 2xx (RFC 3261 13.3.1.4): end the call."""
        if self.phase is Phase.UP:
            self._bye(Side.A)
            self._bye(Side.B)
            self._finish()

    # -- sending
    def _reply_a(
        self,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        reason_header: str | None = None,
    ) -> None:
        if self.a_final_sent or self.a_tx is None:
            return
        extra: list[tuple[str, str]] = []
        if status < 300 and status != 100:
            # 12.1.1: the trunk's proxies stay on the dialog's path (their addresses,
            # not a party's: the one header of leg A that must come back to it).
            if self.invite is not None:
                for route in self.invite.headers.raw_values("Record-Route"):
                    extra.append(("Record-Route", route))
            extra.append(("Contact", self.b2bua.endpoint.contact(self.a.transport)))
            if status >= 200:
                extra.append(("Allow", ALLOW))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        if reason_header:
            text = reason_header.replace('"', "'")
            extra.append(("Reason", f'SIP;cause={status};text="{text}"'))
        if status >= 200:
            self.a_final_sent = True
        self._reply(self.a_tx, status, reason, body=body, extra=extra, to_tag=self.a_tag)

    def _refuse(self, refusal: Reject) -> None:
        """Leg A's final response, with a Reason header saying why (RFC 3326)."""
        self._reply_a(refusal.status, reason_header=refusal.reason)

    def _reply(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
        to_tag: str | None = None,
    ) -> None:
        tx.reply(status, reason, to_tag=to_tag, headers=[*(extra or ()), SERVER], body=body)

    def _send_ack(self, side: Side, cseq: int, body: bytes = b"") -> None:
        leg = self._leg(side)
        if leg.dialog is None or leg.target is None:
            return
        ack = leg.dialog.request(
            "ACK", cseq=cseq, body=body, content_type="application/sdp" if body else None
        )
        invite = leg.invite_tx
        if invite is not None and invite.request.cseq[0] != cseq:
            invite = None
        self.b2bua.endpoint.send_ack(ack, leg.target, invite)

    def _ack_and_bye(self, response: Response, side: Side = Side.B) -> None:
        """A 2xx we no longer want (a fork, or after CANCEL) to our INVITE on ``side``:
        ACK it, then BYE it."""
        invite = self._leg(side).invite_tx
        if invite is None:
            return
        dialog = Dialog.as_uac(invite.request, response)
        target = self._target_of(dialog, self._leg(side).transport)
        ack = dialog.request("ACK", cseq=invite.request.cseq[0])
        self.b2bua.endpoint.send_ack(ack, target)
        bye = dialog.request("BYE")
        self.b2bua.endpoint.request(bye, target, lambda _r: None, lambda _e: None)

    def _bye(self, side: Side) -> None:
        leg = self._leg(side)
        if leg.dialog is None or leg.target is None:
            return
        if leg.deferred_ack is not None:
            self._send_ack(side, leg.deferred_ack)
            leg.deferred_ack = None
        bye = leg.dialog.request("BYE")
        self.b2bua.endpoint.request(bye, leg.target, lambda _r: None, lambda _e: None)

    # -- the end
    def _finish(self) -> None:
        if self.phase is Phase.ENDED:
            return
        self.phase = Phase.ENDED
        for name in list(self._timers):
            self._stop_timer(name)
        interaction = self.interaction
        if interaction is not None:
            interaction.end_time = self.b2bua.ctx.clock.now()
            self._record(lambda: call_service.call_ended(self.b2bua.ctx, interaction))
            # No phone numbers in the log: the session and the outcome identify the call.
            log.info(
                "call %s session %s ended: %s, first party %s, second party %s, %.0f s",
                interaction.uuid,
                interaction.session.uuid,
                interaction.hangup_cause.value,
                interaction.statuses.get(Role.FIRST, LegStatus.NOT_DIALED).value,
                interaction.statuses.get(Role.SECOND, LegStatus.NOT_DIALED).value,
                interaction.connected_seconds(),
            )
        self._record(self.media.close)

    def _abort(self, refusal: Reject | None = None) -> None:
        """After an unexpected error: leave no leg hanging."""
        if self.interaction is not None:
            self.interaction.hangup_cause = HangupCause.FAILED
        if refusal is not None:
            self._refuse(refusal)
        else:
            self._reply_a(500)
        if self.phase is Phase.UP:
            self._bye(Side.A)
            self._bye(Side.B)
        elif self.phase is Phase.DIALING and self.b_tx is not None:
            self.b_tx.cancel()
        self._finish()

    def _cleanup(self) -> None:
        self.b2bua.forget(self)

    # -- helpers
    def _leg(self, side: Side) -> Leg:
        return self.a if side is Side.A else self.b

    def _role(self, side: Side) -> Role:
        assert self.interaction is not None
        role = self.interaction.caller_role
        return role if side is Side.A else role.other

    @staticmethod
    def _target_of(dialog: Dialog, transport: str) -> Target:
        hop = dialog.next_hop()
        target = target_for(hop)
        if "transport" not in hop.params and transport != target.transport:
            # A Contact without ;transport= is reached the way the dialog came in.
            target = Target(transport, target.host, target.port)
        return target


def _async(action: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        action()

    return run


def _is_sdp(message: Request | Response) -> bool:
    content_type = message.headers.get("Content-Type") or ""
    return content_type.split(";")[0].strip().lower() == "application/sdp"


def _max_forwards(invite: Request) -> int:
    value = invite.headers.get("Max-Forwards")
    incoming = int(value) if value and value.isdigit() else 70
    return max(0, min(70, incoming - 1))
