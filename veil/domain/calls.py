"""Call rules, pure: who may call through a virtual number and to whom, how a leg's
outcome maps to SIP and to Plivo's statuses and events, and what a call is billed.

The call plane (``veil.calls``) asks these questions; the answers never depend on I/O.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from veil.domain.events import SessionEvent
from veil.domain.infobip import MaskingConfig
from veil.domain.session import Session, Status


class Role(enum.StrEnum):
    FIRST = "first"
    SECOND = "second"

    @property
    def other(self) -> Role:
        return Role.SECOND if self is Role.FIRST else Role.FIRST


@dataclass(frozen=True, slots=True)
class Bridge:
    """Connect the caller to the other party of ``session``."""

    session: Session
    caller_role: Role
    caller: str
    callee: str
    # A known party of a PIN session let through without a PIN: reported to the
    # session as PinAuthenticationStatus "AuthorizedCaller".
    authorized_caller: bool = False


@dataclass(frozen=True, slots=True)
class AskPin:
    """Answer the caller and ask for a PIN: the digits pick the session and the party.
    ``session`` gives the prompts and retry rules, and hears of failed attempts: the
    caller's own session when a known party is asked (``force_pin_authentication``),
    else a PIN session on the number."""

    session: Session
    caller: str | None


@dataclass(frozen=True, slots=True)
class Announce:
    """Answer a caller who is no party, play ``session.unknown_caller_play``, hang up."""

    session: Session


@dataclass(frozen=True, slots=True)
class AskCustomer:
    """The number belongs to an Infobip-style configuration: ask its callbackUrl what to
    do. ``main_account_id`` owns the number (the caller IDs a dial may show)."""

    config: MaskingConfig
    main_account_id: int


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the call: SIP status and the Reason text (RFC 3326) saying why."""

    status: int
    reason: str


NOT_A_VIRTUAL_NUMBER = Reject(404, "Not a virtual number")
NO_TRUNK = Reject(503, "No outbound trunk configured")
MEDIA_UNAVAILABLE = Reject(503, "Media engine unavailable")
RING_TIMEOUT = Reject(480, "Ring timeout")
NO_ACTIVE_SESSION = Reject(404, "No active session on this number")
UNKNOWN_CALLER = Reject(403, "Caller is not a party of the session")
PIN_NEEDS_MEDIA = Reject(403, "PIN authentication is not available")
SINGLE_PARTY = Reject(480, "The session has no other party yet")


Decision = Bridge | AskPin | Announce | AskCustomer | Reject


def play_url(session: Session, role: Role) -> str:
    """The prompt a party hears before the other is connected ("" for none)."""
    settings = session.settings
    return settings.first_party_play_url if role is Role.FIRST else settings.second_party_play_url


def route_inbound(
    caller: str | None, sessions: list[Session], now: datetime, *, media: bool = True
) -> Decision:
    """Where a call from ``caller`` to a virtual number goes, given the sessions that
    hold that number (live or not). The allocator guarantees a party is in at most one
    live session per number. Without a media engine (``media=False``) nothing can be
    played or collected: a PIN is refused and an announcement becomes a plain refusal."""
    live = [s for s in sessions if s.status_at(now) is not Status.EXPIRED]
    if not live:
        return NO_ACTIVE_SESSION
    for session in live:
        if caller and caller == session.first_party:
            role = Role.FIRST
        elif caller and caller == session.second_party:
            role = Role.SECOND
        else:
            continue
        pin = session.settings.is_pin_authentication_required
        if pin and session.settings.force_pin_authentication:
            return AskPin(session, caller) if media else PIN_NEEDS_MEDIA
        callee = session.second_party if role is Role.FIRST else session.first_party
        if not callee:
            return SINGLE_PARTY
        return Bridge(session, role, caller, callee, authorized_caller=pin)
    for session in live:
        if session.settings.is_pin_authentication_required:
            return AskPin(session, caller) if media else PIN_NEEDS_MEDIA
    for session in live:
        if session.settings.unknown_caller_play and media:
            return Announce(session)
    return UNKNOWN_CALLER


class LegStatus(enum.StrEnum):
    """A leg's outcome as Plivo names call statuses."""

    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"
    FAILED = "failed"
    NOT_DIALED = "not-dialed"


def leg_status_for(sip_status: int) -> LegStatus:
    """The outcome of a leg that ended with a final SIP response >= 300."""
    if sip_status in (486, 600):
        return LegStatus.BUSY
    if sip_status in (408, 480):
        return LegStatus.NO_ANSWER
    if sip_status == 487:
        return LegStatus.CANCELED
    return LegStatus.FAILED


def relay_status(sip_status: int) -> int:
    """The final response leg A gets when leg B failed with ``sip_status``. Most are
    relayed as they are; authentication challenges and redirects are the trunk's
    business with Veil, not the caller's."""
    if sip_status in (401, 407):
        return 503
    if 300 <= sip_status < 400:
        return 480
    return sip_status


class HangupCause(enum.StrEnum):
    """Why an interaction ended, in the style of Plivo's hangup causes."""

    NORMAL = "normal_hangup"
    BUSY = "busy_line"
    NO_ANSWER = "no_answer"
    CANCELED = "cancelled_by_caller"
    REJECTED = "call_rejected"
    FAILED = "destination_unreachable"
    TIME_LIMIT = "call_time_limit_reached"
    RING_TIMEOUT = "ring_timeout_reached"

    @property
    def code(self) -> int:
        return _HANGUP_CODES[self]


_HANGUP_CODES = {
    HangupCause.NORMAL: 4000,
    HangupCause.BUSY: 3010,
    HangupCause.NO_ANSWER: 3020,
    HangupCause.CANCELED: 3030,
    HangupCause.REJECTED: 3040,
    HangupCause.FAILED: 3050,
    HangupCause.TIME_LIMIT: 4020,
    HangupCause.RING_TIMEOUT: 3060,
}


def hangup_cause_for(status: LegStatus, sip_status: int) -> HangupCause:
    if status is LegStatus.BUSY:
        return HangupCause.BUSY
    if status is LegStatus.NO_ANSWER:
        return HangupCause.NO_ANSWER
    if status is LegStatus.CANCELED:
        return HangupCause.CANCELED
    if sip_status in (403, 603):
        return HangupCause.REJECTED
    return HangupCause.FAILED


BILLING_INCREMENT = 60  # seconds: calls are billed per started minute


def billed_seconds(connected_seconds: float) -> int:
    """Billed duration of one answered leg: whole started minutes, as carriers bill."""
    if connected_seconds <= 0:
        return 0
    return math.ceil(connected_seconds / BILLING_INCREMENT) * BILLING_INCREMENT


class LegEvent(enum.Enum):
    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWER = "answer"
    HANGUP = "hangup"
    COMPLETE = "complete"
    FAILED = "failed"


# Plivo's names per party (plivo-wire.md 8.1): note "FirstPartyRinging" but
# "SecondPartyRing".
_EVENTS = {
    (Role.FIRST, LegEvent.INITIATED): SessionEvent.FIRST_PARTY_INITIATED,
    (Role.FIRST, LegEvent.RINGING): SessionEvent.FIRST_PARTY_RINGING,
    (Role.FIRST, LegEvent.ANSWER): SessionEvent.FIRST_PARTY_ANSWER,
    (Role.FIRST, LegEvent.HANGUP): SessionEvent.FIRST_PARTY_HANGUP,
    (Role.FIRST, LegEvent.COMPLETE): SessionEvent.FIRST_PARTY_COMPLETE,
    (Role.FIRST, LegEvent.FAILED): SessionEvent.FIRST_PARTY_FAILED,
    (Role.SECOND, LegEvent.INITIATED): SessionEvent.SECOND_PARTY_INITIATED,
    (Role.SECOND, LegEvent.RINGING): SessionEvent.SECOND_PARTY_RING,
    (Role.SECOND, LegEvent.ANSWER): SessionEvent.SECOND_PARTY_ANSWER,
    (Role.SECOND, LegEvent.HANGUP): SessionEvent.SECOND_PARTY_HANGUP,
    (Role.SECOND, LegEvent.COMPLETE): SessionEvent.SECOND_PARTY_COMPLETE,
    (Role.SECOND, LegEvent.FAILED): SessionEvent.SECOND_PARTY_FAILED,
}


def party_event(role: Role, event: LegEvent) -> SessionEvent:
    return _EVENTS[(role, event)]


# Headers of leg B: built from these only, never copied from leg A. Anything naming a
# party (Diversion, Remote-Party-ID, PAI/PPI, History-Info, Contact, User-Agent, Via,
# Subject, Call-Info, X-*) therefore cannot cross, whatever the trunk sends.
RELAYED_CONTENT_TYPES = frozenset(
    {"application/sdp", "application/dtmf-relay", "application/dtmf", "audio/telephone-event"}
)
