"""Events Veil reports to a session's ``callback_url`` and ``recording_callback_url``, with
Plivo's names and fields.

Names: plivo-wire.md section 8.1 (session events, to ``callback_url``) and 8.2
(recording events, to ``recording_callback_url``). Every value on the wire is a string,
because the signature is computed over exactly the strings sent (section 8.3).
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
    # Veil's own: a play URL could not be used and the call went on without it.
    PLAY_FAILED = "SessionPlayFailed"


class RecordingEvent(enum.StrEnum):
    INITIATED = "SessionRecordingInitiated"  # both parties connected, recording began
    COMPLETED = "SessionRecordingCompleted"  # the call ended, the file is ready
    FAILED = "SessionRecordingFailed"  # record=true, but there is no recording


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
    params = _common(session, str(event), at, sequence)
    return Callback(settings.callback_url, settings.callback_method, str(event), params | extra)


def _common(session: Session, event: str, at: datetime, sequence: int) -> dict[str, str]:
    return {
        "EventName": event,
        "EventTimestamp": format_event_time(at),
        "SessionUUID": session.uuid,
        "VirtualNumber": session.virtual_number.lstrip("+"),
        "SequenceNumber": str(sequence),
    }


@dataclass(frozen=True, slots=True)
class RecordingDetails:
    """What a recording event says about the recording; what is not known yet (the file
    of a recording that just began, anything of one that failed) is sent as ``""``."""

    recording_uuid: str = ""
    url: str = ""  # the media file, absolute
    resource_url: str = ""  # the Recording resource, absolute
    duration: float | None = None  # seconds
    start_time: datetime | None = None
    end_time: datetime | None = None
    file_format: str = ""  # "mp3" or "wav"
    failure_reason: str = ""


def recording_event(
    session: Session,
    event: RecordingEvent,
    at: datetime,
    sequence: int,
    *,
    caller: str,
    callee: str,
    details: RecordingDetails,
) -> Callback | None:
    """The callback for a recording event, or None when the session has no
    recording_callback_url. ``caller`` and ``callee`` are E.164 (sent without ``+``)."""
    settings = session.settings
    if not settings.recording_callback_url:
        return None

    def when(moment: datetime | None) -> str:
        return format_event_time(moment) if moment is not None else ""

    params = _common(session, str(event), at, sequence) | {
        "From": caller.lstrip("+"),
        "To": callee.lstrip("+"),
        "RecordingUUID": details.recording_uuid,
        "RecordingURL": details.url,
        "RecordingResourceURL": details.resource_url,
        "RecordingDuration": str(round(details.duration)) if details.duration is not None else "",
        "RecordingStartTime": when(details.start_time),
        "RecordingEndTime": when(details.end_time),
        "RecordingFormat": "." + details.file_format if details.file_format else "",
    }
    if event is RecordingEvent.FAILED:
        # Veil's addition: Plivo documents no reason for a failed recording.
        params["RecordingFailureReason"] = details.failure_reason
    return Callback(
        settings.recording_callback_url, settings.recording_callback_method, str(event), params
    )
