"""Masking session parameters: defaults, ranges, parsing and validation.

This is the one place where Plivo's rules for session attributes live (seeds 000, 001,
002 and 004; plivo-wire.md sections 1 and 4). The API layer hands over the request body
as a dict; what comes back is either a typed value or an ``InvalidRequest`` carrying
Plivo's message.

Leniency, because real SDKs send it (plivo-wire.md section 1): keys in any case, unknown
keys ignored, numbers and booleans as strings, ``null`` or ``""`` meaning "not given",
and ``0`` meaning "use the default" for the time attributes (Go and Java always send 0).

Two profiles: the current ``/Masking/Session/`` API rejects an out-of-range value; the
legacy ``/Session/`` API has its own defaults and clamps ``call_time_limit`` as its page
documents (invalid: default; below min: min; above max: max).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.phone import E164
from veil.domain.values import (
    KEY_ALIASES,
    MAX_URL_LENGTH,
    PIN_LENGTH,
    IntRule,
    Values,
    normalize_keys,
    to_int,
)


class Profile(enum.Enum):
    CURRENT = "current"  # /v1/Account/{auth_id}/Masking/Session/
    LEGACY = "legacy"  # /v1/Account/{auth_id}/Session/


SESSION_EXPIRY = {
    Profile.CURRENT: IntRule(3600, 60, 86400),
    Profile.LEGACY: IntRule(1800, 60, 86400),
}
CALL_TIME_LIMIT = {
    Profile.CURRENT: IntRule(3600, 60, 86400),
    Profile.LEGACY: IntRule(14400, 60, 86400, clamp=True),
}
RING_TIMEOUT = IntRule(120, 5, 300)
GENERATE_PIN_LENGTH = IntRule(4, 4, 15)
PIN_RETRY = IntRule(1, 0, 5, zero_is_default=False)
PIN_RETRY_WAIT = IntRule(5, 5, 10)
COOLOFF_PERIOD = IntRule(0, 0, 3600, zero_is_default=False)
# Legacy sessions were never geomatched: the legacy API predates the attribute.
GEOMATCH_DEFAULT = {Profile.CURRENT: True, Profile.LEGACY: False}


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything a client configures on a session besides the parties and its expiry."""

    call_time_limit: int
    ring_timeout: int = RING_TIMEOUT.default
    record: bool = False
    record_file_format: str = "mp3"
    recording_callback_url: str = ""
    recording_callback_method: str = "POST"
    callback_url: str = ""
    callback_method: str = "POST"
    initiate_call_to_first_party: bool = False
    first_party_play_url: str = ""
    second_party_play_url: str = ""
    is_pin_authentication_required: bool = False
    generate_pin: bool = False
    generate_pin_length: int = GENERATE_PIN_LENGTH.default
    first_party_pin: str = ""
    second_party_pin: str = ""
    pin_prompt_play: str = ""
    pin_retry: int = PIN_RETRY.default
    pin_retry_wait: int = PIN_RETRY_WAIT.default
    incorrect_pin_play: str = ""
    unknown_caller_play: str = ""
    geomatch: bool = True
    force_pin_authentication: bool = False
    create_session_with_single_party: bool = False
    virtual_number_cooloff_period: int = COOLOFF_PERIOD.default


SETTINGS_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SessionSettings))


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """A validated create request."""

    first_party: E164 | None
    second_party: E164 | None
    session_expiry: int
    subaccount: str | None
    settings: SessionSettings

    @property
    def parties(self) -> list[str]:
        """The parties given, as E.164 strings (one for a single-party session)."""
        return [p.value for p in (self.first_party, self.second_party) if p is not None]

    @property
    def anchor(self) -> E164:
        """The party whose country geomatch follows: the first, else the second."""
        party = self.first_party or self.second_party
        assert party is not None  # parse_create guarantees one
        return party


# Attributes that may not change on an active session (seeds 001 and 004), then the
# create-only ones the update page does not list as updatable.
IMMUTABLE = (
    "first_party",
    "second_party",
    "initiate_call_to_first_party",
    "is_pin_authentication_required",
    "pin_prompt_play",
    "pin_retry",
    "pin_retry_wait",
    "incorrect_pin_play",
    "unknown_caller_play",
    "geomatch",
    "subaccount",
    "generate_pin",
    "generate_pin_length",
    "first_party_pin",
    "second_party_pin",
    "force_pin_authentication",
    "virtual_number_cooloff_period",
)
UPDATABLE = (
    "record",
    "recording_callback_url",
    "record_file_format",
    "recording_callback_method",
    "session_expiry",
    "call_time_limit",
    "callback_url",
    "callback_method",
    "ring_timeout",
    "first_party_play_url",
    "second_party_play_url",
)


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    """A validated update request: only what the client gave."""

    settings: dict[str, Any] = field(default_factory=dict)  # SessionSettings field -> value
    session_expiry: int | None = None
    first_party: E164 | None = None
    second_party: E164 | None = None
    # Immutable attributes the client sent, to be compared with the session's values.
    fixed: dict[str, Any] = field(default_factory=dict)


def parse_create(body: Mapping[str, Any], profile: Profile) -> SessionRequest:
    """Validate a create body; raise ``InvalidRequest`` with Plivo's message on the first fault.

    Checks run in the order of Plivo's error list: parties first, then expiry, call time
    limit, recording, and the rest.
    """
    read = Values(normalize_keys(body))
    single = read.boolean("create_session_with_single_party", False)
    first = read.phone("first_party")
    second = read.phone("second_party")
    if single:
        if first is None and second is None:
            raise InvalidRequest(messages.ONE_PARTY_MISSING)
    else:
        if first is None:
            raise InvalidRequest(messages.missing("first_party"))
        if second is None:
            raise InvalidRequest(messages.missing("second_party"))
    if first is not None and first == second:
        raise InvalidRequest(messages.SAME_PARTY)

    session_expiry = read.integer("session_expiry", SESSION_EXPIRY[profile])
    call_time_limit = read.integer("call_time_limit", CALL_TIME_LIMIT[profile])
    record = read.boolean("record", False)
    record_file_format = read.record_file_format()
    recording_callback_url = read.url("recording_callback_url")
    recording_callback_method = read.method("recording_callback_method")

    pin_required = read.boolean("is_pin_authentication_required", False)
    generate_pin = read.boolean("generate_pin", False)
    generate_pin_length = read.integer("generate_pin_length", GENERATE_PIN_LENGTH)
    first_pin = read.pin("first_party_pin")
    second_pin = read.pin("second_party_pin")
    pin_prompt_play = read.url("pin_prompt_play", audio=True)
    if pin_required:
        if not pin_prompt_play:
            raise InvalidRequest(messages.missing("pin_prompt_play"))
        if not generate_pin:
            if not first_pin:
                raise InvalidRequest(messages.missing("first_party_pin"))
            if not second_pin:
                raise InvalidRequest(messages.missing("second_party_pin"))
    if first_pin and first_pin == second_pin:
        raise InvalidRequest(messages.PINS_EQUAL)

    subaccount = read.identifier("subaccount") or None
    settings = SessionSettings(
        call_time_limit=call_time_limit,
        ring_timeout=read.integer("ring_timeout", RING_TIMEOUT),
        record=record,
        record_file_format=record_file_format,
        recording_callback_url=recording_callback_url,
        recording_callback_method=recording_callback_method,
        callback_url=read.url("callback_url"),
        callback_method=read.method("callback_method"),
        initiate_call_to_first_party=read.boolean("initiate_call_to_first_party", False),
        first_party_play_url=read.url("first_party_play_url"),
        second_party_play_url=read.url("second_party_play_url"),
        is_pin_authentication_required=pin_required,
        generate_pin=generate_pin,
        generate_pin_length=generate_pin_length,
        first_party_pin=first_pin,
        second_party_pin=second_pin,
        pin_prompt_play=pin_prompt_play,
        pin_retry=read.integer("pin_retry", PIN_RETRY),
        pin_retry_wait=read.integer("pin_retry_wait", PIN_RETRY_WAIT),
        incorrect_pin_play=read.url("incorrect_pin_play", audio=True),
        unknown_caller_play=read.url("unknown_caller_play", audio=True),
        geomatch=read.boolean("geomatch", GEOMATCH_DEFAULT[profile]),
        force_pin_authentication=read.boolean("force_pin_authentication", False),
        create_session_with_single_party=single,
        virtual_number_cooloff_period=read.integer("virtual_number_cooloff_period", COOLOFF_PERIOD),
    )
    return SessionRequest(first, second, session_expiry, subaccount, settings)


def parse_update(body: Mapping[str, Any], profile: Profile) -> SessionUpdate:
    """Validate an update body. Only attributes the client gave appear in the result.

    ``0`` for a time attribute means "not given" (Java always sends it), so it changes
    nothing. ``create_session_with_single_party`` and ``session_uuid`` are ignored:
    SDKs send them on every update.
    """
    normalized = normalize_keys(body)
    read = Values(normalized)
    settings: dict[str, Any] = {}
    for name in UPDATABLE:
        if not read.given(name) or name == "session_expiry":
            continue
        if name == "record":
            settings[name] = read.boolean(name, False)
        elif name == "record_file_format":
            settings[name] = read.record_file_format()
        elif name.endswith("_method"):
            settings[name] = read.method(name)
        elif name.endswith("_url"):
            settings[name] = read.url(name)
        else:
            rule = CALL_TIME_LIMIT[profile] if name == "call_time_limit" else RING_TIMEOUT
            if to_int(normalized[name]) == 0:
                continue
            settings[name] = read.integer(name, rule)
    # Callback URLs may be cleared with "": given() is False for "", so look again.
    for name in (
        "callback_url",
        "recording_callback_url",
        "first_party_play_url",
        "second_party_play_url",
    ):
        if normalized.get(name) == "":
            settings[name] = ""

    session_expiry = None
    if read.given("session_expiry") and to_int(normalized["session_expiry"]) != 0:
        session_expiry = read.integer("session_expiry", SESSION_EXPIRY[profile])

    fixed: dict[str, Any] = {}
    for name in IMMUTABLE:
        if name in ("first_party", "second_party") or not read.given(name):
            continue
        fixed[name] = _read_fixed(read, name)
    return SessionUpdate(
        settings=settings,
        session_expiry=session_expiry,
        first_party=read.phone("first_party"),
        second_party=read.phone("second_party"),
        fixed=fixed,
    )


def _read_fixed(read: Values, name: str) -> Any:
    if name in (
        "initiate_call_to_first_party",
        "is_pin_authentication_required",
        "geomatch",
        "generate_pin",
        "force_pin_authentication",
    ):
        return read.boolean(name, False)
    if name in (
        "pin_retry",
        "pin_retry_wait",
        "generate_pin_length",
        "virtual_number_cooloff_period",
    ):
        value = to_int(read.body[name])
        if value is None:
            raise InvalidRequest(messages.not_integer(name))
        return value
    if name.endswith("_pin"):
        return read.pin(name)
    if name == "subaccount":
        return read.identifier(name)
    return read.url(name, audio=True)


__all__ = [
    "CALL_TIME_LIMIT",
    "COOLOFF_PERIOD",
    "GENERATE_PIN_LENGTH",
    "GEOMATCH_DEFAULT",
    "IMMUTABLE",
    "KEY_ALIASES",
    "MAX_URL_LENGTH",
    "PIN_LENGTH",
    "PIN_RETRY",
    "PIN_RETRY_WAIT",
    "RING_TIMEOUT",
    "SESSION_EXPIRY",
    "SETTINGS_FIELDS",
    "UPDATABLE",
    "IntRule",
    "Profile",
    "SessionRequest",
    "SessionSettings",
    "SessionUpdate",
    "normalize_keys",
    "parse_create",
    "parse_update",
]


# The settings that only work with a media engine (recording, prompts, PIN entry).
MEDIA_FIELDS = (
    "record",
    "is_pin_authentication_required",
    "first_party_play_url",
    "second_party_play_url",
    "unknown_caller_play",
)


def needs_media(values: object) -> bool:
    """Whether settings (a ``SessionSettings`` or a mapping of changed fields) ask for
    something only a media engine can do."""
    if isinstance(values, dict):
        return any(values.get(name) for name in MEDIA_FIELDS)
    return any(getattr(values, name, None) for name in MEDIA_FIELDS)
