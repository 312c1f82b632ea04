"""Calls through masking sessions: routing an inbound call, and recording what happened
(interactions, statistics, ``in-progress`` status, leg events in the outbox).

Each function is one transaction, so a call's bookkeeping is never half written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, select, update

from veil.domain.allocator import party_key, pin_key
from veil.domain.calls import (
    NOT_A_VIRTUAL_NUMBER,
    SINGLE_PARTY,
    AskCustomer,
    Bridge,
    Decision,
    HangupCause,
    LegEvent,
    LegStatus,
    Reject,
    Role,
    billed_seconds,
    party_event,
    route_inbound,
)
from veil.domain.events import SessionEvent, session_event
from veil.domain.ids import new_uuid
from veil.domain.pin_entry import PinStatus
from veil.domain.session import Session, Status
from veil.service.context import ServiceContext
from veil.store import infobip as infobip_store
from veil.store import interactions, outbox
from veil.store import sessions as repo
from veil.store.db import Conn
from veil.store.tables import number_claims, numbers, sessions

_LIVE = (
    sessions.c.status != Status.EXPIRED.value,
    sessions.c.expiry_time > bindparam("now"),
)
# The caller's session on the number, through its claim: the claim's primary key
# (key, number_id) finds it without scanning the number's other sessions.
_CALLERS_SESSION = (
    select(sessions)
    .join(number_claims, number_claims.c.session_id == sessions.c.id)
    .join(numbers, numbers.c.id == number_claims.c.number_id)
    .where(
        numbers.c.e164 == bindparam("e164"),
        number_claims.c.key == bindparam("key"),
        *_LIVE,
    )
)
# Any live session on the number (a PIN session first): decides between "unknown
# caller" and "no active session" when the caller is not a party.
_ANY_SESSION = (
    select(sessions)
    .join(numbers, numbers.c.id == sessions.c.number_id)
    .where(numbers.c.e164 == bindparam("e164"), *_LIVE)
    .order_by(sessions.c.is_pin_authentication_required.desc())
    .limit(1)
)
# The live sessions holding a PIN that starts with the digits typed so far, through the
# PIN claims: keys "pin:<digits>" up to "pin:<digits>:" (":" sorts after "9").
_PIN_CLAIMS = (
    select(sessions, number_claims.c.key)
    .join(number_claims, number_claims.c.session_id == sessions.c.id)
    .join(numbers, numbers.c.id == number_claims.c.number_id)
    .where(
        numbers.c.e164 == bindparam("e164"),
        number_claims.c.key >= bindparam("low"),
        number_claims.c.key < bindparam("high"),
        *_LIVE,
    )
    .order_by(number_claims.c.key)
    .limit(2)
)
# Whether the number exists, and whether an Infobip-style configuration owns it.
_NUMBER_OWNER = select(numbers.c.id, numbers.c.masking_config_id).where(
    numbers.c.e164 == bindparam("e164")
)
_CALL_STARTED = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"))
    .values(
        calls_in_progress=sessions.c.calls_in_progress + 1,
        status=case(
            (sessions.c.status == Status.EXPIRED.value, Status.EXPIRED.value),
            else_=Status.IN_PROGRESS.value,
        ),
    )
)
_CALL_ENDED = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"))
    .values(
        calls_in_progress=sessions.c.calls_in_progress - 1,
        status=case(
            (sessions.c.status == Status.EXPIRED.value, Status.EXPIRED.value),
            (sessions.c.calls_in_progress > 1, Status.IN_PROGRESS.value),
            else_=Status.ACTIVE.value,
        ),
        total_call_count=sessions.c.total_call_count + bindparam("call_count"),
        total_call_billed_duration=sessions.c.total_call_billed_duration + bindparam("billed"),
        last_interaction_time=bindparam("end_time"),
    )
)


async def route_call(ctx: ServiceContext, called: str, caller: str | None) -> Decision:
    """Where a call to virtual number ``called`` (E.164) from ``caller`` goes."""
    now = ctx.clock.now()
    async with ctx.db.read() as conn:
        rows: list[Any] = []
        if caller:
            params = {"e164": called, "key": party_key(caller), "now": now}
            rows = list((await conn.execute(_CALLERS_SESSION, params)).all())
        if not rows:
            rows = list((await conn.execute(_ANY_SESSION, {"e164": called, "now": now})).all())
        if not rows:
            number = (await conn.execute(_NUMBER_OWNER, {"e164": called})).first()
            if number is None:
                return NOT_A_VIRTUAL_NUMBER
            if number.masking_config_id is not None:
                owned = await infobip_store.config_of_number(conn, called)
                if owned is not None:
                    return AskCustomer(*owned)
    sessions_found = [repo.session_from_row(r) for r in rows]
    return route_inbound(caller, sessions_found, now, media=ctx.media.available)


async def match_pin(
    ctx: ServiceContext, called: str, digits: str, *, complete: bool
) -> Bridge | Reject | None:
    """The party whose PIN on virtual number ``called`` is ``digits``, bridged to the
    other party; None when no live session has that PIN. While the caller may still be
    typing (``complete=False``) a PIN that is the start of a longer one is not taken
    yet, so "1234" never cuts off someone typing "12345"."""
    now = ctx.clock.now()
    key = pin_key(digits)
    params = {"e164": called, "low": key, "high": key + ":", "now": now}
    async with ctx.db.read() as conn:
        rows = list((await conn.execute(_PIN_CLAIMS, params)).all())
    exact = [r for r in rows if r.key == key]
    if not exact or (not complete and len(rows) > 1):
        return None
    session = repo.session_from_row(exact[0])
    role = Role.FIRST if session.settings.first_party_pin == digits else Role.SECOND
    caller, callee = session.first_party, session.second_party
    if role is Role.SECOND:
        caller, callee = callee, caller
    if not callee:
        return SINGLE_PARTY
    return Bridge(session, role, caller, callee)


async def pin_status(
    ctx: ServiceContext, session: Session, caller: str | None, status: PinStatus, retries: int
) -> None:
    """``SessionPinAuthenticationStatus`` to the session's callback."""
    if not session.settings.callback_url:
        return
    params = {
        "From": (caller or "").lstrip("+"),
        "FirstParty": session.first_party.lstrip("+"),
        "SecondParty": session.second_party.lstrip("+"),
        "PinAuthenticationStatus": status.value,
        "PinRetryCounter": str(retries),
    }
    async with ctx.db.write() as conn:
        now = ctx.clock.now()
        await _emit(conn, session, SessionEvent.PIN_AUTHENTICATION_STATUS, now, params)


@dataclass(slots=True)
class Interaction:
    """One call through a session, as the call plane fills it in."""

    session: Session
    caller_role: Role
    start_time: datetime
    uuid: str = field(default_factory=new_uuid)
    leg_uuids: dict[Role, str] = field(default_factory=dict)
    statuses: dict[Role, LegStatus] = field(default_factory=dict)
    answer_time: datetime | None = None
    end_time: datetime | None = None
    hangup_cause: HangupCause = HangupCause.NORMAL
    hung_up_by: Role | None = None

    def party(self, role: Role) -> str:
        return self.session.first_party if role is Role.FIRST else self.session.second_party

    @property
    def caller(self) -> str:
        return self.party(self.caller_role)

    @property
    def callee(self) -> str:
        return self.party(self.caller_role.other)

    def connected_seconds(self) -> float:
        if self.answer_time is None or self.end_time is None:
            return 0.0
        return max(0.0, (self.end_time - self.answer_time).total_seconds())


async def _events(
    conn: Conn,
    interaction: Interaction,
    events: list[tuple[Role | None, LegEvent | None, dict[str, str]]],
    now: datetime,
) -> None:
    """Write leg events to the outbox, when the session has a callback URL."""
    session = interaction.session
    if not session.settings.callback_url:
        return
    for role, kind, extra in events:
        if role is None or kind is None:
            event = SessionEvent.PARTIES_HANGUP
        else:
            event = party_event(role, kind)
        params = {
            "From": interaction.caller.lstrip("+"),
            "To": interaction.callee.lstrip("+"),
            "FirstParty": session.first_party.lstrip("+"),
            "SecondParty": session.second_party.lstrip("+"),
            "CallUUID": interaction.leg_uuids.get(role, "") if role else interaction.uuid,
            **extra,
        }
        await _emit(conn, session, event, now, params)


async def _emit(
    conn: Conn, session: Session, event: SessionEvent, now: datetime, params: dict[str, str]
) -> None:
    """One event to the session's callback_url, through the outbox, in sequence."""
    await outbox.enqueue_session_event(
        conn, session, now, lambda sequence: session_event(session, event, now, sequence, **params)
    )


async def call_started(
    ctx: ServiceContext, interaction: Interaction, initiated: list[Role] | None = None
) -> None:
    """A call began: the session is ``in-progress`` and the legs placed so far (by
    default the caller's and the callee's) are reported initiated."""
    if initiated is None:
        initiated = [interaction.caller_role, interaction.caller_role.other]
    async with ctx.db.write() as conn:
        now = ctx.clock.now()
        await conn.execute(_CALL_STARTED, {"session_id": interaction.session.id})
        await _events(conn, interaction, [(r, LegEvent.INITIATED, {}) for r in initiated], now)


async def leg_event(
    ctx: ServiceContext, interaction: Interaction, role: Role, kind: LegEvent
) -> None:
    """A leg rang or answered (only written when someone listens)."""
    if not interaction.session.settings.callback_url:
        return
    async with ctx.db.write() as conn:
        await _events(conn, interaction, [(role, kind, {})], ctx.clock.now())


async def call_ended(ctx: ServiceContext, interaction: Interaction) -> None:
    """The call is over: store the interaction, add it to the session's totals, put the
    session back to ``active`` (unless another call is up), and report the hangup."""
    now = ctx.clock.now()
    end = interaction.end_time or now
    interaction.end_time = end
    connected_exact = interaction.connected_seconds()
    connected = round(connected_exact)
    answered = [r for r, s in interaction.statuses.items() if s is LegStatus.COMPLETED]
    billed = billed_seconds(connected_exact) * len(answered)
    call_count = len(interaction.leg_uuids)
    first = interaction.statuses.get(Role.FIRST, LegStatus.NOT_DIALED)
    second = interaction.statuses.get(Role.SECOND, LegStatus.NOT_DIALED)
    async with ctx.db.write() as conn:
        await conn.execute(
            _CALL_ENDED,
            {
                "session_id": interaction.session.id,
                "call_count": call_count,
                "billed": billed,
                "end_time": end,
            },
        )
        await interactions.insert_interaction(
            conn,
            {
                "uuid": interaction.uuid,
                "session_id": interaction.session.id,
                "caller_role": interaction.caller_role.value,
                "start_time": interaction.start_time,
                "answer_time": interaction.answer_time,
                "end_time": end,
                "first_party_call_uuid": interaction.leg_uuids.get(Role.FIRST),
                "second_party_call_uuid": interaction.leg_uuids.get(Role.SECOND),
                "first_party_status": first.value,
                "second_party_status": second.value,
                "duration": connected,
                "billed_duration": billed,
                "call_count": call_count,
                "hangup_cause": interaction.hangup_cause.value,
            },
        )
        cause = interaction.hangup_cause
        hangup = {
            "Duration": str(connected),
            "BilledDuration": str(billed_seconds(connected_exact)),
            "Amount": "0",
            "PlivoHangupCause": cause.value,
            "PlivoHangupCauseCode": str(cause.code),
        }
        events: list[tuple[Role | None, LegEvent | None, dict[str, str]]] = []
        for role in (interaction.caller_role, interaction.caller_role.other):
            status = interaction.statuses.get(role)
            if status is LegStatus.COMPLETED:
                if interaction.hung_up_by in (role, None):
                    events.append((role, LegEvent.HANGUP, hangup))
                events.append((role, LegEvent.COMPLETE, hangup))
            elif status is not None and status is not LegStatus.NOT_DIALED:
                events.append((role, LegEvent.FAILED, hangup))
        events.append((None, None, hangup))
        await _events(conn, interaction, events, now)


async def play_failed(
    ctx: ServiceContext,
    session: Session,
    url: str,
    reason: str,
    *,
    caller: str | None = None,
    callee: str = "",
    call_uuid: str = "",
) -> None:
    """A prompt URL could not be fetched or played: the call went on without it (or
    with Veil's default prompt). ``SessionPlayFailed`` is Veil's event (Plivo names
    none for this)."""
    if not session.settings.callback_url:
        return
    params = {
        "From": (caller or "").lstrip("+"),
        "To": callee.lstrip("+"),
        "CallUUID": call_uuid,
        "PlayUrl": url,
        "Reason": reason,
    }
    async with ctx.db.write() as conn:
        await _emit(conn, session, SessionEvent.PLAY_FAILED, ctx.clock.now(), params)
