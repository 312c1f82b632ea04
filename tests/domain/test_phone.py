"""Phone numbers: what clients send, the E.164 Veil stores, the country it belongs to.

Plivo takes numbers with or without '+' and echoes them without it (seed README, seed
004's example session); the SDKs send strings, and a lenient client a JSON integer.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest

from veil.domain.phone import E164, country_name, parse_e164

US = E164("+14155552671", "US")


@pytest.mark.parametrize(
    "raw",
    [
        "+14155552671",
        "14155552671",  # Plivo's echo form, which clients send back
        "0014155552671",  # the international 00 prefix
        "00 1 415 555 2671",
        14155552671,  # a JSON integer
        "+1 (415) 555-2671",
        "1-415-555-2671",
        "+1.415.555.2671",
        " +1 415 555 2671 ",
        "+1\t415\u00a0555 2671",  # tabs and no-break spaces pasted from documents
    ],
)
def test_spellings_of_one_number(raw: Any) -> None:
    assert parse_e164(raw) == US


@pytest.mark.parametrize(
    ("raw", "value", "country"),
    [
        # The parties and virtual number of seed 004's example session, and seed 000's Go
        # example.
        ("919003459051", "+919003459051", "IN"),
        ("918197241073", "+918197241073", "IN"),
        ("912269947011", "+912269947011", "IN"),
        ("+912025550000", "+912025550000", "IN"),
        ("+33612345678", "+33612345678", "FR"),
        ("+4915112345678", "+4915112345678", "DE"),
        ("+5511961234567", "+5511961234567", "BR"),
    ],
)
def test_seed_and_foreign_numbers(raw: str, value: str, country: str) -> None:
    assert parse_e164(raw) == E164(value, country)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "+",
        "abc",
        "12345",  # too short for any country
        "1" * 16,  # longer than E.164 allows
        "+1415555CALL",  # letters are not separators
        "+1 415 555 2671 ext 5",
        "+1/415/555/2671",
        "1+4155552671",
        "+0014155552671",  # '+' then '00': country code 0 does not exist
        "+10005550100",  # area code 000 is not assigned
        "+999123456789",  # country code 999 is not assigned
        "+14155552671+",
        True,  # bool is an int in Python, but not a phone number
        False,
        None,
        14155552671.0,
        b"+14155552671",
        ["+14155552671"],
        {"number": "+14155552671"},
    ],
)
def test_not_a_phone_number(raw: Any) -> None:
    assert parse_e164(raw) is None


def test_digits_is_plivos_echo_form() -> None:
    assert US.digits == "14155552671"
    assert parse_e164(US.digits) == US


def test_e164_is_a_value() -> None:
    # Compared by value (same-party checks) and usable as a dict key (claims).
    assert parse_e164("+14155552671") == parse_e164("0014155552671")
    assert parse_e164("+14155552671") != parse_e164("+14155552672")
    assert len({parse_e164("+14155552671"), parse_e164("14155552671")}) == 1
    with pytest.raises(AttributeError):
        US.value = "+1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("e164", "name"),
    [
        ("+14155552671", "United States"),
        ("+919003459051", "India"),
        ("+33612345678", "France"),
        ("+4915112345678", "Germany"),
    ],
)
def test_country_name(e164: str, name: str) -> None:
    assert country_name(e164) == name


def example_numbers() -> list[tuple[str, str]]:
    """(region, example E.164 number) for every region the phonenumbers data knows."""
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(
            region, phonenumbers.PhoneNumberType.MOBILE
        ) or phonenumbers.example_number(region)
        if number is not None:
            out.append(
                (region, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
            )
    return out


EXAMPLES = example_numbers()


def test_examples_cover_the_world() -> None:
    # Guards the table below against a phonenumbers release without example numbers.
    assert len(EXAMPLES) > 200


@pytest.mark.parametrize(("region", "e164"), EXAMPLES)
def test_every_region_in_every_spelling(region: str, e164: str) -> None:
    digits = e164[1:]
    parsed = {parse_e164(raw) for raw in (e164, digits, "00" + digits, int(digits))}
    assert len(parsed) == 1
    [number] = parsed
    assert number is not None
    assert number.value == e164
    assert number.digits == digits
    # A few regions share number ranges with a neighbour (Åland with Finland, Vatican
    # with Italy, …); the country must at least be one of those sharing the code.
    code = phonenumbers.parse(e164).country_code
    assert code is not None
    assert number.country in phonenumbers.region_codes_for_country_code(code)
    assert region in phonenumbers.region_codes_for_country_code(code)
