"""Reading typed values out of request bodies the way Plivo's SDKs send them.

Leniency, because real SDKs send it (plivo-wire.md section 1): keys in any case, ``null``
or ``""`` meaning "not given", numbers and booleans as strings. Every fault raises
``InvalidRequest`` with a message from veil.domain.messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.phone import E164, parse_e164

MAX_URL_LENGTH = 1000  # characters; seed 000: "The max URL length can be 1000"
MAX_TEXT_LENGTH = 255  # names, aliases and the like (their column width)
MAX_NUMBER_TYPE_LENGTH = 32
PIN_LENGTH = (4, 15)  # digits
RECORD_FILE_FORMATS = ("mp3", "wav")
HTTP_METHODS = ("GET", "POST")
AUDIO_SUFFIXES = (".mp3", ".wav")

# Other names SDKs put on the wire for the same attribute (plivo-wire.md sections 3-4):
# docs pages say is_pin_authentication, Java's Jackson adds pin_authentication_required,
# Node's lodash turns subAccount/geoMatch into sub_account/geo_match.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

KEY_ALIASES = {
    "is_pin_authentication": "is_pin_authentication_required",
    "pin_authentication_required": "is_pin_authentication_required",
    "sub_account": "subaccount",
    "geo_match": "geomatch",
}


@dataclass(frozen=True, slots=True)
class IntRule:
    """An integer attribute: its default and inclusive range."""

    default: int
    low: int
    high: int
    zero_is_default: bool = True  # 0 means "not given" (Go and Java send 0 for unset)
    clamp: bool = False  # legacy: out of range is pulled into range, junk gives the default


def normalize_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Lower-case every key and map SDK aliases to the documented name.

    A documented key wins over an alias of it. ``None`` values are dropped: JSON null
    means "not given".
    """
    out: dict[str, Any] = {}
    aliased: dict[str, Any] = {}
    for key, value in body.items():
        if value is None or not isinstance(key, str):
            continue
        name = key.strip().lower()
        if name in KEY_ALIASES:
            aliased[KEY_ALIASES[name]] = value
        else:
            out[name] = value
    for name, value in aliased.items():
        if out.get(name) in (None, ""):  # "" is "not given": the alias applies
            out[name] = value
    return out


class Values:
    """Reads typed attributes out of a normalised body, raising Plivo's messages."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body

    def given(self, name: str) -> bool:
        value = self.body.get(name)
        return value is not None and value != ""

    def phone(self, name: str) -> E164 | None:
        if not self.given(name):
            return None
        number = parse_e164(self.body[name])
        if number is None:
            raise InvalidRequest(messages.invalid_phone(name))
        return number

    def boolean(self, name: str, default: bool) -> bool:
        if not self.given(name):
            return default
        value = self.body[name]
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise InvalidRequest(messages.not_boolean(name))

    def integer(self, name: str, rule: IntRule) -> int:
        if not self.given(name):
            return rule.default
        value = to_int(self.body[name])
        if value is None:
            if rule.clamp:
                return rule.default
            raise InvalidRequest(messages.not_integer(name))
        if value == 0 and rule.zero_is_default:
            return rule.default
        if rule.low <= value <= rule.high:
            return value
        if rule.clamp:
            return min(max(value, rule.low), rule.high)
        raise InvalidRequest(messages.out_of_range(name))

    def text(self, name: str, *, max_length: int = MAX_URL_LENGTH) -> str:
        """A single-line string; control characters (NUL included) are refused."""
        text = self.identifier(name)
        if len(text) > max_length or has_control_characters(text):
            raise InvalidRequest(messages.not_text(name))
        return text

    def identifier(self, name: str) -> str:
        """A string that the caller checks against a strict format (an auth_id), so that
        a malformed one gets the message for an unknown one."""
        value = self.body.get(name, "")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidRequest(messages.not_text(name))
        return str(value).strip()

    def url(self, name: str, *, audio: bool = False) -> str:
        text = self.identifier(name)
        if not text:
            return ""
        if len(text) > MAX_URL_LENGTH:
            raise InvalidRequest(messages.url_too_long(name))
        if not is_http_url(text):
            raise InvalidRequest(messages.not_url(name))
        if audio and not urlsplit(text).path.lower().endswith(AUDIO_SUFFIXES):
            raise InvalidRequest(messages.not_audio_url(name))
        return text

    def method(self, name: str) -> str:
        text = self.text(name).upper()
        if not text:
            return "POST"
        if text not in HTTP_METHODS:
            raise InvalidRequest(messages.not_method(name))
        return text

    def record_file_format(self) -> str:
        text = self.text("record_file_format").lower()
        if not text:
            return "mp3"
        if text not in RECORD_FILE_FORMATS:
            raise InvalidRequest(messages.RECORD_FILE_FORMAT)
        return text

    def pin(self, name: str) -> str:
        text = self.text(name)
        low, high = PIN_LENGTH
        if text and not (text.isascii() and text.isdigit() and low <= len(text) <= high):
            raise InvalidRequest(messages.not_pin(name))
        return text


# Integers beyond this are beyond every range and every stored value; capping them keeps
# int() off 4300-digit strings and the database inside 64-bit integers.
INTEGER_CAP = 2**62


def to_int(value: Any) -> int | None:
    """An integer from a JSON number or a numeric string (capped at +-INTEGER_CAP);
    None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(-INTEGER_CAP, min(value, INTEGER_CAP))
    if isinstance(value, float):
        return to_int(int(value)) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            return None
        magnitude = int(digits) if len(digits) <= 19 else INTEGER_CAP
        return to_int(-magnitude if text.startswith("-") else magnitude)
    return None


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def is_http_url(text: str) -> bool:
    """An absolute http or https URL with a host, no whitespace and no control characters."""
    if any(ch.isspace() for ch in text) or has_control_characters(text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
