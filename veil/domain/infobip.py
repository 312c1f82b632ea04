"""Infobip-style number masking, pure: what a configuration may hold, what the customer's
callback may answer, what a call's outcome is called, and what the status report says.

The customer keeps the mapping; Veil asks its ``callbackUrl`` on every call to a number
of such a configuration (seed 003, peers.md section 2). Numbers in payloads are E.164
digits without ``+``, as Infobip sends them.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from veil.domain.delivery import url_problem
from veil.domain.errors import InvalidRequest
from veil.domain.phone import parse_e164

ACTION_TYPE = "VOICE_NUMBER_MASKING"
NAME_MAX = 100
_NAME = re.compile(r"[A-Za-z0-9 ]+")
_DESCRIPTION = re.compile(r"[A-Za-z0-9 .,:;!?'()_-]*")
DESCRIPTION_MAX = 1000
CREDENTIAL_MAX = 255

MAX_FILE_BYTES = 4 * 1024 * 1024  # "Max size of the file is 4MB"

# The API's messages (``requestError.serviceException.text``), in one place.
INVALID_LOGIN = "Invalid login details"
INVALID_BODY = "Invalid request body: send a JSON object."
NUMBER_NOT_FOUND = "Number not found."
ACTION_NOT_FOUND = "Number masking action not found."
CONFIG_NOT_FOUND = "Number masking configuration not found."
CREDENTIALS_NOT_FOUND = "Number masking credentials not found."
CREDENTIALS_EXIST = "Number masking credentials already exist."
NAME_TAKEN = "A number masking configuration with this name already exists."
NUMBER_OWNED = "Number is already used by another number masking action or configuration."
NUMBER_IN_SESSIONS = "Number is used by active masking sessions."
NUMBER_NOT_LINKED = "Number is not linked to this number masking configuration."
FILE_MISSING = "[url : url or content must be given]"
FILE_TOO_LARGE = "the file is larger than 4 MB"
FILE_NOT_MP3 = "the file is not an mp3 file"

CALLBACK_TIMEOUT = 5.0  # seconds Veil waits for a callback answer (VEIL_INFOBIP_...)
MAX_CALLBACKS = 10  # callbacks per call: a captureDtmf loop ends after this many
# captureDtmf when the answer does not say: up to 10 keys, "#" ends early, 5 s of silence.
DTMF_MAX_LENGTH = 10
DTMF_LENGTH_LIMIT = 32
DTMF_TIMEOUT = 5
DTMF_TIMEOUT_LIMIT = 60
DTMF_TERMINATOR = "#"
# A dialled call has no session to give it limits: Plivo's defaults for sessions.
RING_TIMEOUT = 45
CALL_TIME_LIMIT = 14400


class ConfigKind(enum.StrEnum):
    ACTION = "action"  # v1: /numbers/1/numbers/{numberKey}/actions, one number
    CONFIG = "config"  # v2: /voice/masking/2/config, linked to any numbers


@dataclass(frozen=True, slots=True)
class MaskingConfig:
    """An action or configuration: where Veil asks and where it reports."""

    id: int
    key: str
    account_id: int
    kind: ConfigKind
    name: str
    callback_url: str
    status_url: str
    backup_callback_url: str
    backup_status_url: str
    description: str
    insert_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class ConfigFields:
    """What a client may set on a configuration (validated)."""

    name: str
    callback_url: str
    status_url: str = ""
    backup_callback_url: str = ""
    backup_status_url: str = ""
    description: str = ""


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"[{name} : must be a string]")
    return value.strip()


def _url(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    url = _text(body, name)
    if not url:
        if required:
            raise InvalidRequest(f"[{name} : may not be empty]")
        return ""
    if url_problem(url) is not None:
        raise InvalidRequest(f"[{name} : must be a valid http or https URL]")
    return url


def action_fields(body: dict[str, Any]) -> ConfigFields:
    """A v1 action request: ``type`` VOICE_NUMBER_MASKING, ``callbackUrl``, ``statusUrl``."""
    kind = body.get("type")
    if kind != ACTION_TYPE:
        raise InvalidRequest(f"[type : must be {ACTION_TYPE}]")
    return ConfigFields(
        name="",
        callback_url=_url(body, "callbackUrl", required=True),
        status_url=_url(body, "statusUrl"),
    )


def config_fields(body: dict[str, Any]) -> ConfigFields:
    """A v2 configuration (``NumberMaskingSetupBody``)."""
    name = _text(body, "name")
    if not name:
        raise InvalidRequest("[name : may not be empty]")
    if len(name) > NAME_MAX or not _NAME.fullmatch(name):
        raise InvalidRequest(f"[name : must be alphanumeric, at most {NAME_MAX} characters]")
    description = _text(body, "description")
    if len(description) > DESCRIPTION_MAX or not _DESCRIPTION.fullmatch(description):
        raise InvalidRequest(
            f"[description : must be plain text, at most {DESCRIPTION_MAX} characters]"
        )
    return ConfigFields(
        name=name,
        callback_url=_url(body, "callbackUrl", required=True),
        status_url=_url(body, "statusUrl"),
        backup_callback_url=_url(body, "backupCallbackUrl"),
        backup_status_url=_url(body, "backupStatusUrl"),
        description=description,
    )


def credential_fields(body: dict[str, Any]) -> tuple[str, str]:
    """(apiId, key) of a credentials request."""
    values = []
    for name in ("apiId", "key"):
        value = _text(body, name)
        if not value:
            raise InvalidRequest(f"[{name} : may not be empty]")
        if len(value) > CREDENTIAL_MAX:
            raise InvalidRequest(f"[{name} : at most {CREDENTIAL_MAX} characters]")
        values.append(value)
    return values[0], values[1]


# -- what the customer's callback may answer
@dataclass(frozen=True, slots=True)
class Dial:
    """Bridge the caller to ``phone_number`` (E.164), showing ``caller_id`` (E.164, or
    "" for the called number)."""

    phone_number: str
    caller_id: str


@dataclass(frozen=True, slots=True)
class Audio:
    """Answer, play the uploaded file, hang up."""

    file_id: str


@dataclass(frozen=True, slots=True)
class CaptureDtmf:
    """Answer (if not yet), play ``file_id`` if given, collect up to ``max_length`` keys
    (``terminator`` ends early, ``timeout`` seconds of silence end too), then call back
    with ``dtmfCaptured`` and the keys in ``dtmf``."""

    file_id: str = ""
    max_length: int = DTMF_MAX_LENGTH
    timeout: int = DTMF_TIMEOUT
    terminator: str = DTMF_TERMINATOR


Command = Dial | Audio | CaptureDtmf


class BadAnswer(ValueError):
    """The callback's answer is not a command Veil can carry out; the text says why."""


def _bounded_int(answer: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = answer.get(name)
    if value is None:  # absent or null: not given
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadAnswer(f"{name} must be a whole number")
    try:
        number = int(value)
    except ValueError:
        raise BadAnswer(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise BadAnswer(f"{name} must be between {low} and {high}")
    return number


def parse_command(answer: object) -> Command:
    """The command in a callback's JSON answer; ``BadAnswer`` if there is none."""
    if not isinstance(answer, dict):
        raise BadAnswer("the answer is not a JSON object")
    command = answer.get("command")
    if command == "dial":
        phone = parse_e164(answer.get("phoneNumber"))
        if phone is None:
            raise BadAnswer("dial: phoneNumber is not a valid phone number")
        caller_id = ""
        if answer.get("callerId") not in (None, ""):
            parsed = parse_e164(answer.get("callerId"))
            if parsed is None:
                raise BadAnswer("dial: callerId is not a valid phone number")
            caller_id = parsed.value
        return Dial(phone.value, caller_id)
    if command == "audio":
        file_id = answer.get("fileId")
        if not isinstance(file_id, str) or not file_id:
            raise BadAnswer("audio: fileId is missing")
        return Audio(file_id)
    if command == "captureDtmf":
        file_id = answer.get("fileId") or ""
        if not isinstance(file_id, str):
            raise BadAnswer("captureDtmf: fileId must be a string")
        terminator = answer.get("terminator")
        if terminator is None:  # absent or null: not given
            terminator = DTMF_TERMINATOR
        if not isinstance(terminator, str) or terminator not in ("", "#", "*"):
            raise BadAnswer('captureDtmf: terminator must be "#", "*" or ""')
        return CaptureDtmf(
            file_id=file_id,
            max_length=_bounded_int(answer, "maxLength", DTMF_MAX_LENGTH, 1, DTMF_LENGTH_LIMIT),
            timeout=_bounded_int(answer, "timeout", DTMF_TIMEOUT, 1, DTMF_TIMEOUT_LIMIT),
            terminator=terminator,
        )
    raise BadAnswer(f"unknown command {command!r}" if command else "no command")


def caller_id_problem(caller_id: str, called: str, account_numbers: set[str]) -> str | None:
    """Why a dial may not show ``caller_id``, or None. Only the called number or another
    number of the same account: never an arbitrary number (no spoofing)."""
    if not caller_id or caller_id == called or caller_id in account_numbers:
        return None
    return "callerId is not a number of the account"


# -- the call's outcome and its status report
class CallStatus(enum.StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no answer"
    FAILED = "failed"
    CONGESTION = "congestion"


def status_for_sip(status: int) -> CallStatus:
    """The report's status for the dialled leg's final SIP response (a decline, 603,
    is "failed", as the session calls' leg status has it)."""
    if 200 <= status < 300:
        return CallStatus.ANSWERED
    if status in (486, 600):
        return CallStatus.BUSY
    if status in (408, 480, 487):
        return CallStatus.NO_ANSWER
    if status in (502, 503, 504):
        return CallStatus.CONGESTION
    return CallStatus.FAILED


# Why Veil ended a call itself (SIP status and Reason text, RFC 3326).
CALLBACK_FAILED = (503, "Number masking callback failed")
CALLER_ID_REFUSED = (403, "Number masking callerId is not a number of the account")
FILE_NOT_FOUND = (404, "Number masking audio file not found")
TOO_MANY_CALLBACKS = (500, "Number masking callback loop")


@dataclass(slots=True)
class MaskedCall:
    """One call to a number of an Infobip configuration: what its status report says.
    Filled in by the call plane as the call goes."""

    config: MaskingConfig
    caller: str  # E.164 with +, "" when the caller is anonymous
    called: str
    start_time: datetime
    correlation_id: str  # the call record (Veil's call id)
    nm_correlation_id: str  # the inbound call
    action: str = ""  # the last command carried out: dial, audio or captureDtmf
    transfer_to: str = ""
    file_id: str = ""
    status: CallStatus = CallStatus.FAILED
    cause: str = ""  # why Veil ended the call, when it did
    ringing_time: datetime | None = None
    answered_time: datetime | None = None  # the dialled party answered
    end_time: datetime | None = None
    callbacks: int = 0

    def callback_body(self, dtmf: str | None = None) -> dict[str, Any]:
        """The callback request (``NumberMaskingCallbackRequest``); after a
        captureDtmf, ``dtmfCaptured`` and the keys."""
        body: dict[str, Any] = {
            "from": bare(self.caller),
            "to": bare(self.called),
            "correlationId": self.correlation_id,
            "nmCorrelationId": self.nm_correlation_id,
        }
        if dtmf is not None:
            body["dtmfCaptured"] = True
            body["dtmf"] = dtmf
        return body

    def status_report(self) -> dict[str, Any]:
        """The status report (``NumberMaskingStatusRequest``), the fields Veil knows."""
        end = self.end_time or self.start_time
        report: dict[str, Any] = {
            "action": self.action,
            "from": bare(self.caller),
            "to": bare(self.called),
            "transferTo": bare(self.transfer_to),
            "duration": _seconds(self.answered_time, end),
            "inboundDuration": _seconds(self.start_time, end),
            "status": self.status.value,
            "correlationId": self.correlation_id,
            "nmCorrelationId": self.nm_correlation_id,
        }
        if self.file_id:
            report["fileId"] = self.file_id
        if self.ringing_time is not None:
            report["ringingTime"] = infobip_time(self.ringing_time)
        if self.answered_time is not None:
            report["answeredTime"] = infobip_time(self.answered_time)
        if self.cause:
            report["cause"] = self.cause  # Veil's: why it ended the call itself
        return report


def _seconds(start: datetime | None, end: datetime) -> int:
    if start is None:
        return 0
    return max(0, math.ceil((end - start).total_seconds()))


def bare(number: str) -> str:
    """A number as Infobip writes it: E.164 digits without ``+``."""
    return number.removeprefix("+")


def infobip_time(moment: datetime) -> str:
    """Infobip's timestamps: ``2019-08-05T10:05:36.150+0000``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"
