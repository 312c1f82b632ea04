"""``initiate_call_to_first_party``: Veil calls the first party from the virtual number
and, once answered, the second party, then bridges the two.

Without a media engine Veil has no SDP of its own, so this is third-party call control
as RFC 3725 flow IV has it: party one is called without an offer, its offer is answered
with a "black hole" (nothing flows yet); party two is called without an offer too, and
its offer goes to party one in a re-INVITE whose answer completes party two's call.
Party two's ACK waits only for that re-INVITE, never for a person to pick up.
"""

from __future__ import annotations

import secrets

from veil.calls.b2bua import B2bua
from veil.calls.call import Call, Phase, Side, as_event, sleep_until
from veil.calls.sdp import hold_answer, neutralize, with_origin
from veil.domain.calls import HangupCause, LegEvent, LegStatus, Role, leg_status_for, play_url
from veil.domain.calls import hangup_cause_for as cause_for
from veil.domain.ids import new_uuid
from veil.domain.session import Session
from veil.service import calls as call_service
from veil.sip.dialog import Dialog
from veil.sip.message import Request, Response
from veil.sip.transaction import ClientInvite, ServerTransaction


class OutboundCall(Call):
    """Both legs placed by Veil: leg A is the first party, leg B the second."""

    def __init__(self, b2bua: B2bua, session: Session) -> None:
        super().__init__(b2bua, None, None)
        self.session = session
        self.first_request: Request | None = None
        self.first_tx: ClientInvite | None = None
        self.first_auth_tried = False
        self.first_rang = False
        # The bodies of our ACKs, kept so that a retransmitted 2xx gets the same ACK.
        self._hold: bytes | None = None  # to party one: the black hole
        self._b_answer = b""  # to party two: party one's answer
        # Our SDP origin towards party one (RFC 3264 8: stable id, rising version).
        self._origin_id = str(secrets.randbelow(2**31))
        self._origin_version = 0

    def _origin(self) -> bytes:
        self._origin_version += 1
        host = self.b2bua.endpoint.host
        return f"- {self._origin_id} {self._origin_version} IN IP4 {host}".encode()

    async def _route(self) -> None:
        if self.b2bua.settings.trunk is None or not self.session.second_party:
            self.phase = Phase.ENDED
            return
        now = self.b2bua.ctx.clock.now()
        interaction = call_service.Interaction(self.session, Role.FIRST, now)
        interaction.leg_uuids[Role.FIRST] = new_uuid()  # party two's once it is dialled
        self.interaction = interaction
        self._record(lambda: call_service.call_started(self.b2bua.ctx, interaction, [Role.FIRST]))
        request, target = self.outbound_invite(
            self.session.virtual_number, self.session.first_party, b""
        )
        self.first_request = request
        self.a.target = target
        self.a.transport = target.transport
        self.phase = Phase.DIALING
        self._send_first()
        self._start_timer("ring", self.session.settings.ring_timeout, self._ring_timeout)

    def _send_first(self) -> None:
        assert self.first_request is not None and self.a.target is not None
        tx = self.b2bua.endpoint.request(
            self.first_request,
            self.a.target,
            self.deliver(OutboundCall._first_response),
            self.deliver(OutboundCall._first_error),
        )
        assert isinstance(tx, ClientInvite)
        self.first_tx = self.a.invite_tx = tx

    # -- party one
    async def _first_response(self, response: Response) -> None:
        status = response.status
        assert self.first_request is not None and self.interaction is not None
        if status == 100:
            return
        if 200 <= status < 300 and self.a.dialog is not None:
            if response.to.tag == self.a.dialog.remote_tag:
                self._send_ack(Side.A, self.first_request.cseq[0], self._hold_body(response))
            else:
                self._ack_and_bye(response, Side.A)  # another fork answered too
            return
        if self.phase in (Phase.ENDING, Phase.ENDED) or self.b_request is not None:
            if 200 <= status < 300:
                # Party one answered as our CANCEL went out: no 487 will come now.
                self._ack_and_bye(response, Side.A)
                self._finish()
            elif status >= 300 and self.b_request is None:
                self._finish()
            return
        interaction = self.interaction
        if status < 200:
            if not self.first_rang:
                self.first_rang = True
                self._report(Role.FIRST, LegEvent.RINGING)
        elif status < 300:
            self._stop_timer("ring")
            self.a.dialog = Dialog.as_uac(self.first_request, response)
            self.a.target = self._target_of(self.a.dialog, self.a.transport)
            self.b2bua.register(self.a.dialog, self, Side.A)
            self.a_answered = True
            interaction.statuses[Role.FIRST] = LegStatus.COMPLETED
            self._report(Role.FIRST, LegEvent.ANSWER)
            if self._greets(Role.FIRST) and response.body:
                self._start_work(self._greet_first(response))
                return
            self._send_ack(Side.A, self.first_request.cseq[0], self._hold_body(response))
            self._dial_second()
        elif (
            status in (401, 407)
            and not self.first_auth_tried
            and self.b2bua.with_credentials(self.first_request, response)
        ):
            self.first_auth_tried = True
            self._send_first()
        else:
            self._first_failed(status)

    def _greets(self, role: Role) -> bool:
        return bool(self.b2bua.prompts is not None and play_url(self.session, role))

    async def _greet_first(self, response: Response) -> None:
        """``first_party_play_url``: party one's offer is answered by rtpengine (not the
        black hole), so it hears the prompt before party two is called. The later
        re-INVITE with party two's offer reuses the same rtpengine call."""
        assert self.first_request is not None
        path = await self._prompt(play_url(self.session, Role.FIRST), None)
        if path is None:
            self._send_ack(Side.A, self.first_request.cseq[0], self._hold_body(response))
        else:
            self._hold = with_origin(await self.media.answer_alone(response.body), self._origin())
            self._send_ack(Side.A, self.first_request.cseq[0], self._hold)
            await sleep_until(await self._play("a", path))

        async def dial() -> None:
            if self.phase is Phase.IVR:
                self.phase = Phase.DIALING
                self._dial_second()

        self.post(dial)

    def _hold_body(self, response: Response) -> bytes:
        """The answer to party one's offer, made once: a retransmitted 2xx gets the same
        ACK, not a new version of the session. Neutralised too: it tells party one nothing
        (``s=`` would otherwise echo what party one's phone wrote)."""
        if self._hold is None:
            body = response.body
            self._hold = hold_answer(neutralize(body), self._origin()) if body else b""
        return self._hold

    def _first_failed(self, sip_status: int) -> None:
        self._stop_timer("ring")
        assert self.interaction is not None
        status = leg_status_for(sip_status)
        self.interaction.statuses[Role.FIRST] = status
        self.interaction.hangup_cause = cause_for(status, sip_status)
        self._finish()

    async def _first_error(self, reason: str) -> None:
        if self.a.dialog is None and self.phase is Phase.DIALING:
            self._first_failed(408 if reason == "timeout" else 503)
        elif self.phase is Phase.ENDING:
            self._finish()

    # -- party two
    def _dial_second(self) -> None:
        request, target = self.outbound_invite(
            self.session.virtual_number, self.session.second_party, b""
        )
        self.b_request = request
        self.b.target = target
        self.b.transport = target.transport
        if self.interaction is not None:
            self.interaction.leg_uuids[Role.SECOND] = new_uuid()
            self._report(Role.SECOND, LegEvent.INITIATED)
        self._send_b_invite()
        self._start_timer("ring", self.session.settings.ring_timeout, self._ring_timeout)

    async def _b_answered(self, response: Response) -> None:
        assert self.b_request is not None and self.interaction is not None
        self._stop_timer("ring")
        self.b.dialog = Dialog.as_uac(self.b_request, response)
        self.b.target = self._target_of(self.b.dialog, self.b.transport)
        self.b2bua.register(self.b.dialog, self, Side.B)
        self.b.deferred_ack = self.b_request.cseq[0]
        self.interaction.statuses[Role.SECOND] = LegStatus.COMPLETED
        # Party two's offer goes to party one in a re-INVITE (flow IV).
        # Through the media engine: with rtpengine, party one is offered its address.
        offer = b""
        if response.body:
            offer = with_origin(await self.media.offer(response.body, from_leg="b"), self._origin())
        dialog = self.a.dialog
        assert dialog is not None and self.a.target is not None
        reinvite = dialog.request(
            "INVITE",
            contact=self.b2bua.endpoint.contact(self.a.transport),
            body=offer,
            content_type="application/sdp",
        )
        self.b2bua.endpoint.request(
            reinvite,
            self.a.target,
            self.deliver(lambda call, r: call._bridged(reinvite, r)),
            self.deliver(lambda call, _e: call._bridge_failed()),
        )

    async def _bridged(self, reinvite: Request, response: Response) -> None:
        """Party one answered the re-INVITE carrying party two's offer."""
        if response.status < 200:
            return
        if response.status >= 300:
            await self._bridge_failed()
            return
        self._send_ack(Side.A, reinvite.cseq[0])
        cseq = self.b.deferred_ack
        self.b.deferred_ack = None
        if cseq is not None:
            self._b_answer = (
                await self.media.answer(response.body, from_leg="a") if response.body else b""
            )
            self._send_ack(Side.B, cseq, self._b_answer)
        if self.phase is not Phase.DIALING:
            return
        if self._greets(Role.SECOND):
            self._start_work(self._greet_second(), phase=Phase.CONNECTING)
            return
        self._up()

    async def _greet_second(self) -> None:
        """``second_party_play_url``: party two hears it before party one is
        connected; neither hears the other meanwhile."""
        path = await self._prompt(play_url(self.session, Role.SECOND), None)
        if path is not None:
            await self._hold_apart(True)
            await sleep_until(await self._play("b", path))
            await self._hold_apart(False)
        self.post(as_event(self._up))

    def _up(self) -> None:
        if self.phase not in (Phase.DIALING, Phase.CONNECTING):
            return
        self.phase = Phase.UP
        interaction = self.interaction
        assert interaction is not None
        interaction.answer_time = self.b2bua.ctx.clock.now()
        self._report(Role.SECOND, LegEvent.ANSWER)
        self._start_time_limit()
        self._start_recording_if_asked()

    def _ack_b(self, response: Response) -> None:
        """Party two retransmitted its 2xx: its ACK must carry party one's answer, so
        none is sent before that answer is here (``_bridged`` sends it), and a repeated
        one carries it again."""
        if self.b.deferred_ack is not None or self.b_request is None:
            return
        self._send_ack(Side.B, self.b_request.cseq[0], self._b_answer)

    async def in_dialog(self, side: Side, request: Request, tx: ServerTransaction) -> None:
        dialog = self.a.dialog
        if side is Side.A and request.method == "BYE" and self.phase is Phase.DIALING:
            assert dialog is not None
            if not dialog.accepts(request):
                tx.reply(500)
                return
            tx.reply(200)
            self._first_hung_up()
            return
        await super().in_dialog(side, request, tx)

    def _first_hung_up(self) -> None:
        """Party one hung up before the bridge was made: party two is not wanted."""
        interaction = self.interaction
        assert interaction is not None
        interaction.hung_up_by = Role.FIRST
        if self.b.dialog is not None:  # party two answered; the re-INVITE is under way
            self._bye(Side.B)
            self._finish()
            return
        interaction.statuses[Role.SECOND] = LegStatus.CANCELED
        interaction.hangup_cause = HangupCause.CANCELED
        self._cancel_b()

    async def _bridge_failed(self) -> None:
        if self.phase is Phase.ENDED:
            return
        if self.interaction is not None:
            self.interaction.hangup_cause = HangupCause.FAILED
        self._bye(Side.A)
        self._bye(Side.B)
        self._finish()

    def _b_failed(self, sip_status: int, relayed: int) -> None:
        """Party two did not answer: hang up party one."""
        self._stop_timer("ring")
        if self.interaction is not None:
            status = leg_status_for(sip_status)
            self.interaction.statuses[Role.SECOND] = status
            self.interaction.hangup_cause = cause_for(status, sip_status)
        self._bye(Side.A)
        self._finish()

    def _ring_timeout(self) -> None:
        if self.phase is not Phase.DIALING:
            return
        interaction = self.interaction
        assert interaction is not None
        interaction.hangup_cause = HangupCause.RING_TIMEOUT
        if self.b_request is None:  # party one never answered
            interaction.statuses[Role.FIRST] = LegStatus.NO_ANSWER
            self.phase = Phase.ENDING
            if self.first_tx is not None:
                self.first_tx.cancel()
            return
        interaction.statuses[Role.SECOND] = LegStatus.NO_ANSWER
        self._bye(Side.A)
        self._cancel_b()


def originate(b2bua: B2bua, session: Session) -> None:
    """Start the call of a session created with ``initiate_call_to_first_party``."""
    b2bua.start_call(OutboundCall(b2bua, session))
