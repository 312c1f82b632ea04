"""Phone numbers: E.164 normalisation and the country a number belongs to.

Veil stores every number as E.164 with a leading ``+``. Plivo accepts numbers with or
without the ``+`` and echoes them without it, so both directions live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

# Separators people paste into numbers; anything else that is not a digit is an error.
_SEPARATORS = re.compile(r"[\s\-().]")
_DIGITS = re.compile(r"\+?[0-9]{6,15}")


@dataclass(frozen=True, slots=True)
class E164:
    """A valid phone number in E.164 form, e.g. ``+14155550100``."""

    value: str
    country: str  # ISO 3166-1 alpha-2, e.g. "US"

    @property
    def digits(self) -> str:
        """The number without the ``+``, as Plivo echoes it."""
        return self.value[1:]


def parse_e164(raw: object) -> E164 | None:
    """Parse what a client sent as a phone number; None if it is not a valid number.

    Accepts ``+14155550100``, ``14155550100``, ``0014155550100``, an integer, and the
    usual separators (spaces, dashes, dots, parentheses).
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    digits = _digits(str(raw))
    return _parse_digits(digits) if digits else None


def _digits(text: str) -> str | None:
    """The digits of a number as people and SIP trunks write it (separators, ``+`` or
    ``00``), or None when it is not 6 to 15 digits."""
    text = _SEPARATORS.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    return text.lstrip("+") if _DIGITS.fullmatch(text) else None


def normalize_number(user: str | None) -> str | None:
    """A SIP user part as E.164 with ``+`` (``14155550100``, ``+1-415-555-0100``), or
    None when it is not a phone number (``anonymous``, empty). Not validated against
    libphonenumber: a caller from any country must still be recognised as a party."""
    if not user:
        return None
    # Telephone-subscriber parameters (``;npdi``, ``;rn=``, ``;cpc=``) follow the number.
    user = user.split(";", 1)[0].replace("%2B", "+").replace("%2b", "+")
    digits = _digits(user)
    return "+" + digits if digits else None


@lru_cache(maxsize=65536)
def _parse_digits(digits: str) -> E164 | None:
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    region = phonenumbers.region_code_for_number(number)
    if not region:
        return None
    return E164(
        value=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        country=region,
    )


@lru_cache(maxsize=4096)
def country_name(e164: str) -> str:
    """The English name of a number's country ("United States"), as Plivo shows it."""
    return str(geocoder.country_name_for_number(phonenumbers.parse(e164), "en"))
