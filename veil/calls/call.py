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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from veil.calls.media import MediaError, MediaSession
from veil.calls.recorder import RecordingFailed
from veil.domain.calls import (
    MEDIA_UNAVAILABLE,
    NO_TRUNK,
    NOT_A_VIRTUAL_NUMBER,
    RELAYED_CONTENT_TYPES,
    RING_TIMEOUT,
    Announce,
    AskCustomer,
    AskPin,
    Bridge,
    Decision,
    HangupCause,
    LegEvent,
    LegStatus,
    Reject,
    Role,
    hangup_cause_for,
    leg_status_for,
    play_url,
    relay_status,
)
from veil.domain.ids import new_uuid
from veil.domain.infobip import (
    CALL_TIME_LIMIT,
    CALLBACK_FAILED,
    CALLER_ID_REFUSED,
    FILE_NOT_FOUND,
    MAX_CALLBACKS,
    TOO_MANY_CALLBACKS,
    Audio,
    CallStatus,
    CaptureDtmf,
    Dial,
    MaskedCall,
    status_for_sip,
)
from veil.domain.infobip import (
    RING_TIMEOUT as DIAL_RING_TIMEOUT,
)
from veil.domain.phone import normalize_number
from veil.domain.pin_entry import (
    FIRST_KEY_TIMEOUT,
    NEXT_KEY_TIMEOUT,
    PinEntry,
    PinStatus,
    attempts_allowed,
)
from veil.domain.session import Session
from veil.domain.values import PIN_LENGTH
from veil.media import prompts
from veil.media.dtmf import DtmfEvent
from veil.media.prompts import PromptError
from veil.service import calls as call_service
from veil.service import masked_calls, recordings
from veil.sip.dialog import Dialog, new_call_id, new_tag
from veil.sip.endpoint import target_for
from veil.sip.errors import ParseError
from veil.sip.grammar import SipUri, parse_address
from veil.sip.message import Headers, Request, Response
from veil.sip.transaction import ClientInvite, ServerTransaction, Target
from veil.webhooks.ask import AskFailed

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
    IVR = "ivr"  # leg A answered by Veil alone: prompts, PIN entry
    DIALING = "dialing"
    CONNECTING = "connecting"  # leg B answered and hears its play URL
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
        # Leg A got its 200 from Veil before leg B answered (prompts, PIN).
        self.a_answered = False
        # Media work before the bridge, beside the actor (so a BYE still ends it).
        self._work: asyncio.Task[None] | None = None
        self._recording: tuple[str, datetime] | None = None  # (recording uuid, start)
        # Before the caller is a party (PIN, announcement): whose prompts it hears.
        self.prompts_of: Session | None = None
        # A call to a number of an Infobip-style configuration (no session).
        self.masked: MaskedCall | None = None
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
            if self._work is not None:
                self._work.cancel()
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
        decision: Decision
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
        if isinstance(decision, Announce | AskPin):
            self.prompts_of = decision.session
        if isinstance(decision, Announce):
            self._start_work(self._announce(decision))
            return
        if isinstance(decision, AskCustomer):
            self._start_work(self._ask_customer(decision, called or "", caller))
            return
        if self.b2bua.settings.trunk is None:
            self._refuse(NO_TRUNK)
            self.phase = Phase.ENDED
            return
        if isinstance(decision, AskPin):
            self._start_work(self._ask_pin(decision, called or ""))
            return
        if decision.authorized_caller:
            self._pin_status(decision.session, decision.caller, PinStatus.AUTHORIZED_CALLER, 0)
        self._begin(decision)
        if play_url(decision.session, decision.caller_role):
            self._start_work(self._greet_caller(decision))
            return
        await self._dial(decision)

    def _begin(self, decision: Bridge) -> None:
        """The call now belongs to a session: its interaction starts."""
        now = self.b2bua.ctx.clock.now()
        interaction = call_service.Interaction(decision.session, decision.caller_role, now)
        interaction.leg_uuids[decision.caller_role] = new_uuid()
        interaction.leg_uuids[decision.caller_role.other] = new_uuid()
        self.interaction = interaction
        self._record(lambda: call_service.call_started(self.b2bua.ctx, interaction))

    # -- Veil talks to leg A before the bridge (PIN, prompts): beside the actor
    def _start_work(self, work: Coroutine[Any, Any, None], phase: Phase = Phase.IVR) -> None:
        self.phase = phase

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except MediaError as exc:
                log.warning("call failed: media engine: %s", exc)
                self.post(as_event(lambda: self._abort(MEDIA_UNAVAILABLE)))
            except Exception:
                log.exception("call failed")
                self.post(as_event(self._abort))

        self._work = asyncio.get_running_loop().create_task(guarded())

    def _stop_work(self) -> None:
        if self._work is not None and self._work is not asyncio.current_task():
            self._work.cancel()

    async def _hold_apart(self, apart: bool) -> None:
        """Keep (or stop keeping) each party's audio from the other, while one of
        them hears a prompt."""
        await self.media.block("a", dtmf=False, blocked=apart)
        await self.media.block("b", dtmf=False, blocked=apart)

    async def _answer_alone(self) -> bool:
        """Answer leg A with rtpengine standing in for leg B; False if the caller
        went away meanwhile."""
        invite = self.invite
        assert invite is not None
        if not (invite.body and _is_sdp(invite)):
            raise MediaError("the INVITE has no SDP offer to answer")
        body = await self.media.answer_alone(invite.body)
        if self.cancelled or self.phase is Phase.ENDED:
            return False
        self._reply_a(200, body=body)
        self.a_answered = True
        self.a.dialog = Dialog.as_uas(invite, self.a_tag)
        self.a.target = self._target_of(self.a.dialog, self.a.transport)
        self.b2bua.register(self.a.dialog, self, Side.A)
        return True

    async def _prompt(self, url: str, fallback: str | None) -> Path | None:
        """The WAV for a prompt URL; on failure the default prompt ``fallback`` (if
        any), and the session hears why."""
        tools = self.b2bua.prompts
        if tools is None:
            raise MediaError("no prompt store")
        if url:
            try:
                return await tools.fetch(url)
            except PromptError as exc:
                log.info("prompt %s: %s", url, exc)
                self._play_failed(url, str(exc))
        return tools.default(fallback) if fallback else None

    async def _play(self, leg: str, path: Path) -> float:
        """Play ``path`` to ``leg``; returns when the prompt would end."""
        seconds = await self.media.play(leg, path)
        return asyncio.get_running_loop().time() + seconds

    async def _announce(self, decision: Announce) -> None:
        """``unknown_caller_play`` for a caller who is no party, then hang up."""
        path = await self._prompt(
            decision.session.settings.unknown_caller_play, prompts.UNKNOWN_CALLER
        )
        if path is None or not await self._answer_alone():
            return
        await sleep_until(await self._play("a", path))
        self.post(as_event(self._hang_up_a))

    async def _greet_caller(self, decision: Bridge) -> None:
        """The caller's play URL before the other party is called; a URL that fails is
        skipped (the session hears why)."""
        path = await self._prompt(play_url(decision.session, decision.caller_role), None)
        if path is not None:
            if not await self._answer_alone():
                return
            await sleep_until(await self._play("a", path))
        self.post(functools.partial(self._dial, decision))

    async def _ask_pin(self, decision: AskPin, called: str) -> None:
        """The PIN IVR: prompt, collect the keys (blocked from ever reaching the other
        party), match them to a session's party; ``pin_retry`` more tries after a wrong
        one, ``pin_retry_wait`` apart; hang up after the last."""
        settings = decision.session.settings
        if not await self._answer_alone():
            return
        keys: asyncio.Queue[str] = asyncio.Queue()

        def pressed(event: DtmfEvent) -> None:
            if event.source_tag == "a":
                keys.put_nowait(event.digit)

        unsubscribe = self.media.on_dtmf(pressed)
        try:
            await self.media.block("a", dtmf=True, blocked=True)
            attempts = attempts_allowed(settings.pin_retry)
            for attempt in range(attempts):
                prompt = await self._prompt(settings.pin_prompt_play, prompts.PIN_PROMPT)
                assert prompt is not None
                while not keys.empty():  # typed during the last "incorrect" or the wait
                    keys.get_nowait()
                match = await self._read_pin(keys, called, await self._play("a", prompt))
                if isinstance(match, Reject):  # the right PIN, but no one to call yet
                    self.post(as_event(self._hang_up_a))
                    return
                if isinstance(match, Bridge):
                    self._pin_status(match.session, decision.caller, PinStatus.SUCCESS, attempt)
                    self._begin(match)
                    self.post(functools.partial(self._dial, match))
                    return
                self._pin_status(decision.session, decision.caller, PinStatus.FAILED, attempt + 1)
                wrong = await self._prompt(settings.incorrect_pin_play, prompts.INCORRECT_PIN)
                assert wrong is not None
                await sleep_until(await self._play("a", wrong))
                if attempt + 1 < attempts:
                    await asyncio.sleep(settings.pin_retry_wait)
            self.post(as_event(self._hang_up_a))
        finally:
            unsubscribe()

    async def _read_pin(
        self, keys: asyncio.Queue[str], called: str, prompt_end: float
    ) -> Bridge | Reject | None:
        """One attempt: keys until ``#``, the longest PIN, or silence. A key during the
        prompt stops it. A PIN is taken as soon as it is typed, unless it begins a
        longer PIN on the number."""
        entry = PinEntry()
        loop = asyncio.get_running_loop()
        timeout = max(0.0, prompt_end - loop.time()) + FIRST_KEY_TIMEOUT
        while True:
            try:
                key = await asyncio.wait_for(keys.get(), timeout)
            except TimeoutError:
                attempt = entry.finish()
            else:
                if loop.time() < prompt_end:
                    prompt_end = 0.0
                    with contextlib.suppress(MediaError):
                        await self.media.stop_play("a")
                timeout = NEXT_KEY_TIMEOUT
                typed = entry.press(key)
                if typed is None:
                    if len(entry.digits) >= PIN_LENGTH[0]:
                        early = await call_service.match_pin(
                            self.b2bua.ctx, called, entry.digits, complete=False
                        )
                        if isinstance(early, Bridge):
                            return early
                    continue
                attempt = typed
            if len(attempt) < PIN_LENGTH[0]:
                return None
            return await call_service.match_pin(self.b2bua.ctx, called, attempt, complete=True)

    # -- Infobip-style numbers: the customer's callbackUrl says what to do
    async def _ask_customer(self, decision: AskCustomer, called: str, caller: str | None) -> None:
        """Ask the callbackUrl (then its backup), carry out its command; after a
        captureDtmf ask again with the keys. Any failure ends the call with a cause
        that the status report repeats."""
        ctx, asker = self.b2bua.ctx, self.b2bua.asker
        config = decision.config
        masked = MaskedCall(
            config=config,
            caller=caller or "",
            called=called,
            start_time=ctx.clock.now(),
            correlation_id=new_uuid(),
            nm_correlation_id=new_uuid(),
        )
        self.masked = masked
        if asker is None:
            raise MediaError("no callback client")
        credentials = await masked_calls.credentials(ctx, config.account_id)
        keys: str | None = None
        while True:
            if masked.callbacks >= MAX_CALLBACKS:
                self._end_masked(TOO_MANY_CALLBACKS, f"more than {MAX_CALLBACKS} callbacks")
                return
            masked.callbacks += 1
            try:
                command = await asker.ask(config, masked.callback_body(keys), credentials)
            except AskFailed as exc:
                log.info("callback of configuration %s failed: %s", config.key, exc)
                self._end_masked(CALLBACK_FAILED, str(exc))
                return
            if isinstance(command, Dial):
                masked.action, masked.transfer_to = "dial", command.phone_number
                caller_id = command.caller_id or called
                problem = await masked_calls.check_caller_id(
                    ctx, decision.main_account_id, called, caller_id
                )
                if problem is not None:
                    self._end_masked(CALLER_ID_REFUSED, problem)
                    return
                if self.b2bua.settings.trunk is None:
                    self._end_masked((NO_TRUNK.status, NO_TRUNK.reason), NO_TRUNK.reason)
                    return
                masked.status = CallStatus.NO_ANSWER  # until the callee answers or refuses
                self.post(
                    functools.partial(
                        self._place_b, caller_id, command.phone_number, DIAL_RING_TIMEOUT
                    )
                )
                return
            if isinstance(command, Audio):
                masked.action, masked.file_id = "audio", command.file_id
                path = await self._audio_file(config.account_id, command.file_id)
                if path is None:
                    return
                if not self.a_answered and not await self._answer_alone():
                    return
                masked.status = CallStatus.ANSWERED
                await sleep_until(await self._play("a", path))
                self.post(as_event(self._hang_up_a))
                return
            masked.action = "captureDtmf"
            keys = await self._capture_dtmf(config.account_id, command)
            if keys is None:
                return

    async def _audio_file(self, account_id: int, file_id: str) -> Path | None:
        """The WAV of an uploaded file; None (and the call ended) if there is none."""
        file = await masked_calls.audio_file(self.b2bua.ctx, account_id, file_id)
        if file is None:
            self._end_masked(FILE_NOT_FOUND, f"no audio file {file_id}")
            return None
        return Path(file.path)

    async def _capture_dtmf(self, account_id: int, command: CaptureDtmf) -> str | None:
        """Answer, play the prompt, collect keys until the terminator, ``max_length``
        keys or ``timeout`` seconds of silence. None when the call ended meanwhile."""
        prompt = None
        if command.file_id:
            prompt = await self._audio_file(account_id, command.file_id)
            if prompt is None:
                return None
        if not self.a_answered and not await self._answer_alone():
            return None
        keys: asyncio.Queue[str] = asyncio.Queue()

        def pressed(event: DtmfEvent) -> None:
            if event.source_tag == "a":
                keys.put_nowait(event.digit)

        loop = asyncio.get_running_loop()
        unsubscribe = self.media.on_dtmf(pressed)
        try:
            await self.media.block("a", dtmf=True, blocked=True)
            prompt_end = await self._play("a", prompt) if prompt is not None else 0.0
            digits = ""
            while len(digits) < command.max_length:
                timeout = max(0.0, prompt_end - loop.time()) + command.timeout
                try:
                    key = await asyncio.wait_for(keys.get(), timeout)
                except TimeoutError:
                    break
                if loop.time() < prompt_end:  # a key stops the prompt
                    prompt_end = 0.0
                    with contextlib.suppress(MediaError):
                        await self.media.stop_play("a")
                if command.terminator and key == command.terminator:
                    break
                digits += key
            return digits
        finally:
            unsubscribe()

    def _end_masked(self, refusal: tuple[int, str], cause: str) -> None:
        """End a call Veil could not carry out: refused, or hung up once answered."""
        if self.masked is not None:
            self.masked.cause = cause
            if self.masked.status is not CallStatus.ANSWERED:
                self.masked.status = CallStatus.FAILED

        def end() -> None:
            if self.phase is Phase.ENDED:
                return
            self._release_a(*refusal)
            self._finish()

        self.post(as_event(end))

    def _caller_left(self) -> None:
        masked = self.masked
        if masked is not None and not masked.cause and masked.answered_time is None:
            masked.cause = "the caller hung up"

    def _hang_up_a(self) -> None:
        if self.phase is Phase.ENDED:
            return
        self._bye(Side.A)
        self._finish()

    def _pin_status(
        self, session: Session, caller: str | None, status: PinStatus, retries: int
    ) -> None:
        ctx = self.b2bua.ctx
        self._record(lambda: call_service.pin_status(ctx, session, caller, status, retries))

    def _play_failed(self, url: str, reason: str) -> None:
        """Tell the session (the call's, or the one whose prompts a caller who is
        no party hears) that a prompt URL failed."""
        ctx, interaction = self.b2bua.ctx, self.interaction
        caller: str | None
        if interaction is not None:
            session, caller, callee = interaction.session, interaction.caller, interaction.callee
            call_uuid = interaction.leg_uuids.get(interaction.caller_role, "")
        elif self.prompts_of is not None:
            session, callee, call_uuid = self.prompts_of, "", ""
            caller = self._caller_number(self.invite) if self.invite is not None else None
        else:
            return

        async def report() -> None:
            await call_service.play_failed(
                ctx, session, url, reason, caller=caller, callee=callee, call_uuid=call_uuid
            )

        self._record(report)

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
        session = decision.session
        await self._place_b(session.virtual_number, decision.callee, session.settings.ring_timeout)

    async def _place_b(self, caller_id: str, callee: str, ring_timeout: float) -> None:
        """Call ``callee`` through the trunk, showing ``caller_id`` (a virtual number)."""
        if self.phase not in (Phase.ROUTING, Phase.IVR):  # the caller hung up meanwhile
            return
        body = b""
        if self.invite is not None and self.invite.body and _is_sdp(self.invite):
            body = await self.media.offer(self.invite.body, from_leg="a")
        if self.cancelled:  # the CANCEL came while the media engine was asked
            self._cancelled_before_dial()
            return
        max_forwards = _max_forwards(self.invite) if self.invite is not None else 70
        self.b_request, self.b.target = self.outbound_invite(caller_id, callee, body, max_forwards)
        self.b.transport = self.b.target.transport
        self.phase = Phase.DIALING
        self._send_b_invite()
        self._start_timer("ring", ring_timeout, self._ring_timeout)

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
        if self.masked is not None and self.masked.ringing_time is None:
            self.masked.ringing_time = self.b2bua.ctx.clock.now()
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
        interaction = self.interaction
        if interaction is not None and play_url(interaction.session, interaction.caller_role.other):
            self._start_work(self._greet_callee(interaction, body), phase=Phase.CONNECTING)
            return
        self._connect(body)

    async def _greet_callee(self, interaction: call_service.Interaction, body: bytes) -> None:
        """The callee's play URL, before the caller is connected: the caller's audio
        is replaced by the prompt and the callee's does not reach the caller yet."""
        path = await self._prompt(
            play_url(interaction.session, interaction.caller_role.other), None
        )
        if path is not None:
            await self._hold_apart(True)
            await sleep_until(await self._play("b", path))
            await self._hold_apart(False)
        self.post(as_event(functools.partial(self._connect, body)))

    def _connect(self, body: bytes) -> None:
        """Both parties are on the line: bridge them (answer leg A, unless Veil already
        did: port-latching kept its media port, so it needs no new SDP)."""
        if self.phase not in (Phase.DIALING, Phase.CONNECTING):
            return
        assert self.invite is not None
        if not self.a_answered:
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
            self._start_recording_if_asked()
        if self.masked is not None:
            self.masked.answered_time = self.b2bua.ctx.clock.now()
            self.masked.status = CallStatus.ANSWERED
            self._start_timer("limit", CALL_TIME_LIMIT, self._time_limit)
        if self.a_answered:
            self.b2bua.spawn(self._unblock_keys())

    async def _unblock_keys(self) -> None:
        """After a PIN: the caller's keys reach the other party again."""
        with contextlib.suppress(MediaError):
            await self.media.block("a", dtmf=True, blocked=False)

    # -- recording: from the bridge to the end, converted when the call is over
    def _start_recording_if_asked(self) -> None:
        interaction = self.interaction
        if interaction is not None and interaction.session.settings.record:
            self._record(self._start_recording)

    async def _start_recording(self) -> None:
        interaction = self.interaction
        assert interaction is not None
        ctx = self.b2bua.ctx
        try:
            await self.media.start_recording()
        except MediaError as exc:
            await recordings.recording_failed(ctx, interaction, str(exc))
            return
        self._recording = (new_uuid(), ctx.clock.now())
        await recordings.recording_initiated(ctx, interaction, *self._recording)

    async def _finish_recording(self) -> None:
        """After the call's media is closed (rtpengine then closes the pcap)."""
        interaction, recorder = self.interaction, self.b2bua.recorder
        if self._recording is None or interaction is None:
            return
        ctx = self.b2bua.ctx
        uuid, start = self._recording
        session = interaction.session
        fmt: Literal["wav", "mp3"] = (
            "wav" if session.settings.record_file_format == "wav" else "mp3"
        )
        out = recordings.recording_file_path(
            self.b2bua.recordings_dir, session.account_id, uuid, fmt
        )
        try:
            if recorder is None:
                raise RecordingFailed("no recorder")
            seconds = await recorder.convert(self.media.call_id, out, fmt)
        except RecordingFailed as exc:
            log.warning("recording %s of call %s: %s", uuid, interaction.uuid, exc)
            await recordings.recording_failed(ctx, interaction, str(exc))
            return
        end = interaction.end_time or ctx.clock.now()
        file = recordings.RecordingFile(uuid, out, fmt, seconds, start, end)
        await recordings.recording_completed(ctx, interaction, file)

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
        if self.masked is not None:
            self.masked.status = status_for_sip(sip_status)
        interaction = self.interaction
        if interaction is not None:
            status = leg_status_for(sip_status)
            interaction.statuses[interaction.caller_role.other] = status
            interaction.statuses[interaction.caller_role] = LegStatus.FAILED
            interaction.hangup_cause = hangup_cause_for(status, sip_status)
        self._release_a(relayed)
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
        self._timers[name] = loop.call_later(seconds, lambda: self.post(as_event(action)))

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
        if self.masked is not None:
            self.masked.status = CallStatus.NO_ANSWER
        self._release_a(RING_TIMEOUT.status, RING_TIMEOUT.reason)
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
        self.post(as_event(self._cancelled))

    def _cancelled_before_dial(self) -> None:
        interaction = self.interaction
        if interaction is not None:
            interaction.statuses[interaction.caller_role] = LegStatus.CANCELED
            interaction.hangup_cause = HangupCause.CANCELED
        self._finish()

    def _cancelled(self) -> None:
        if self.a_final_sent:  # a CANCEL after the 200 changes nothing (RFC 3261 9.2)
            return
        if self.phase is Phase.IVR:
            self._caller_left()
            self._reply_a(487)
            self._finish()
            return
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
            elif self.phase in (Phase.IVR, Phase.DIALING, Phase.CONNECTING):
                self._hung_up_early(side)
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
        elif self.a_answered and self.phase is not Phase.ENDED:
            self._bye(Side.A)
            self._hung_up_early(Side.A)

    def _hung_up_early(self, side: Side) -> None:
        """A party left before the bridge: the caller while Veil talked to it or the
        callee rang, or the callee during its own prompt."""
        self._stop_work()
        interaction = self.interaction
        if side is Side.A:
            self._caller_left()
            if interaction is not None:
                interaction.statuses[interaction.caller_role] = LegStatus.CANCELED
                interaction.hangup_cause = HangupCause.CANCELED
                interaction.hung_up_by = interaction.caller_role
            if self.phase is Phase.DIALING:
                if interaction is not None:
                    interaction.statuses[interaction.caller_role.other] = LegStatus.CANCELED
                self._cancel_b()
                return
            if self.phase is Phase.CONNECTING:
                self._bye(Side.B)
        else:
            if interaction is not None:
                interaction.statuses[interaction.caller_role] = LegStatus.FAILED
                interaction.hung_up_by = interaction.caller_role.other
            self._release_a(480)
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

    def _release_a(self, status: int, reason_header: str | None = None) -> None:
        """End leg A before the bridge: a final response, or a BYE once Veil answered it."""
        if self.a_answered:
            self._bye(Side.A)
        else:
            self._reply_a(status, reason_header=reason_header)

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
        self._stop_work()
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
        masked = self.masked
        if masked is not None:
            masked.end_time = self.b2bua.ctx.clock.now()
            self._record(lambda: masked_calls.call_ended(self.b2bua.ctx, masked))
            log.info(
                "call %s to a number of configuration %s ended: %s %s %s",
                masked.correlation_id,
                masked.config.key,
                masked.action or "no command",
                masked.status.value,
                masked.cause,
            )
        self._record(self.media.close)
        if interaction is not None and interaction.session.settings.record:
            self._record(self._finish_recording)

    def _abort(self, refusal: Reject | None = None) -> None:
        """After an unexpected error: leave no leg hanging."""
        if self.phase is Phase.ENDED:
            return
        if self.interaction is not None:
            self.interaction.hangup_cause = HangupCause.FAILED
        if refusal is None:
            refusal = Reject(500, "Internal error")
        if self.masked is not None and not self.masked.cause:
            self.masked.cause = refusal.reason
        if self.phase is Phase.UP:
            self._bye(Side.A)
            self._bye(Side.B)
        else:
            self._release_a(refusal.status, refusal.reason)
            if self.phase is Phase.DIALING and self.b_tx is not None:
                self.b_tx.cancel()
            elif self.phase is Phase.CONNECTING:
                self._bye(Side.B)
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


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


def as_event(action: Callable[[], None]) -> Callable[[], Awaitable[None]]:
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
