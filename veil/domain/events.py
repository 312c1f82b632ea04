"""Events Veil reports to a session's ``callback_url``, with Plivo's names and fields.

Names: plivo-wire.md section 8.1. Every value on the wire is a string, because the
signature is computed over exactly the strings sent (section 8.3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from veil.domain.session import Session
from veil.domain.timefmt import format_event_time


class SessionEvent(enum.StrEnum):
    FIRST_PARTY_INITIATED = "SessionFirstPartyInitiated"
    FIRST_PARTY_RINGING = "SessionFirstPartyRinging"
    FIRST_PARTY_ANSWER = "SessionFirstPartyAnswer"
    FIRST_PARTY_COMPLETE = "SessionFirstPartyComplete"
    FIRST_PARTY_FAILED = "SessionFirstPartyFailed"
    FIRST_PARTY_HANGUP = "SessionFirstPartyHangup"
    SECOND_PARTY_INITIATED = "SessionSecondPartyInitiated"
    SECOND_PARTY_RING = "SessionSecondPartyRing"
    SECOND_PARTY_ANSWER = "SessionSecondPartyAnswer"
    SECOND_PARTY_COMPLETE = "SessionSecondPartyComplete"
    SECOND_PARTY_FAILED = "SessionSecondPartyFailed"
    SECOND_PARTY_HANGUP = "SessionSecondPartyHangup"
    VIRTUAL_NUMBER_ANSWER = "SessionVirtualNumberAnswer"
    PIN_AUTHENTICATION_STATUS = "SessionPinAuthenticationStatus"
    TIMEOUT = "SessionTimeout"  # "Triggered when the session expires."
    PARTIES_HANGUP = "SessionPartiesHangup"


@dataclass(frozen=True, slots=True)
class Callback:
    """One request to a customer URL, ready for the outbox."""

    url: str
    method: str
    event: str
    params: dict[str, str]


def session_event(
    session: Session, event: SessionEvent, at: datetime, sequence: int, **extra: str
) -> Callback | None:
    """The callback for a session event, or None when the session has no callback_url."""
    settings = session.settings
    if not settings.callback_url:
        return None
    params = {
        "EventName": str(event),
        "EventTimestamp": format_event_time(at),
        "SessionUUID": session.uuid,
        "VirtualNumber": session.virtual_number.lstrip("+"),
        "SequenceNumber": str(sequence),
        **extra,
    }
    return Callback(settings.callback_url, settings.callback_method, str(event), params)
