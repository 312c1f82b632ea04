"""Session attributes: Plivo's defaults, ranges, leniency and error messages.

Expected values come from the code's own constants (one source of truth); the literal
numbers and wording of Plivo's pages are asserted once, in the first tests, so that a
wrong constant cannot hide behind a test that reads it back. Seeds: 000 (legacy create),
001 (current create), 002 (messages), 004 (update); plivo-wire.md sections 1, 3 and 4.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.domain import messages
from veil.domain.allocator import claimed_pins
from veil.domain.errors import InvalidRequest
from veil.domain.phone import E164
from veil.domain.session_params import (
    CALL_TIME_LIMIT,
    COOLOFF_PERIOD,
    GENERATE_PIN_LENGTH,
    GEOMATCH_DEFAULT,
    IMMUTABLE,
    KEY_ALIASES,
    MAX_URL_LENGTH,
    PIN_LENGTH,
    PIN_RETRY,
    PIN_RETRY_WAIT,
    RING_TIMEOUT,
    SESSION_EXPIRY,
    SETTINGS_FIELDS,
    UPDATABLE,
    IntRule,
    Profile,
    SessionRequest,
    SessionSettings,
    SessionUpdate,
    normalize_keys,
    parse_create,
    parse_update,
)
from veil.domain.values import HTTP_METHODS, RECORD_FILE_FORMATS

CURRENT, LEGACY = Profile.CURRENT, Profile.LEGACY
PROFILES = [CURRENT, LEGACY]

# The parties of seed 004's example session.
FIRST = "+919003459051"
SECOND = "+918197241073"
FIRST_E164 = E164("+919003459051", "IN")
SECOND_E164 = E164("+918197241073", "IN")
PROMPT = "https://example.com/audio/pin_prompt.wav"


def body(**extra: Any) -> dict[str, Any]:
    """A minimal valid create body plus ``extra``."""
    return {"first_party": FIRST, "second_party": SECOND, **extra}


def create(profile: Profile = CURRENT, /, **extra: Any) -> SessionRequest:
    return parse_create(body(**extra), profile)


def create_error(profile: Profile = CURRENT, /, **extra: Any) -> str:
    """The message a create body with ``extra`` is refused with."""
    with pytest.raises(InvalidRequest) as info:
        parse_create(body(**extra), profile)
    return info.value.message


def update_error(raw: dict[str, Any], profile: Profile = CURRENT) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse_update(raw, profile)
    return info.value.message


def attribute(request: SessionRequest, name: str) -> Any:
    """An attribute of a parsed create, wherever it lives."""
    if name == "session_expiry":
        return request.session_expiry
    return getattr(request.settings, name)


# The integer attributes and their rule, per profile.
INT_RULES: dict[Profile, dict[str, IntRule]] = {
    profile: {
        "session_expiry": SESSION_EXPIRY[profile],
        "call_time_limit": CALL_TIME_LIMIT[profile],
        "ring_timeout": RING_TIMEOUT,
        "generate_pin_length": GENERATE_PIN_LENGTH,
        "pin_retry": PIN_RETRY,
        "pin_retry_wait": PIN_RETRY_WAIT,
        "virtual_number_cooloff_period": COOLOFF_PERIOD,
    }
    for profile in PROFILES
}
# Every (profile, name, rule) whose out-of-range values are refused (all but legacy
# call_time_limit, which clamps).
REJECTING = [
    (profile, name, rule)
    for profile in PROFILES
    for name, rule in INT_RULES[profile].items()
    if not rule.clamp
]

URL_FIELDS = (
    "recording_callback_url",
    "callback_url",
    "first_party_play_url",
    "second_party_play_url",
)
AUDIO_FIELDS = ("pin_prompt_play", "incorrect_pin_play", "unknown_caller_play")
BOOLEAN_FIELDS = (
    "record",
    "initiate_call_to_first_party",
    "is_pin_authentication_required",
    "generate_pin",
    "geomatch",
    "force_pin_authentication",
    "create_session_with_single_party",
)


# --- Plivo's literal numbers and words, asserted once -------------------------------------


def test_constants_are_plivos_documented_values() -> None:
    # Seed 001 (current API) and seed 000 (legacy API); (default, low, high).
    assert SESSION_EXPIRY[CURRENT].default == 3600
    assert CALL_TIME_LIMIT[CURRENT].default == 3600
    assert RING_TIMEOUT.default == 120
    assert (GENERATE_PIN_LENGTH.default, GENERATE_PIN_LENGTH.low, GENERATE_PIN_LENGTH.high) == (
        4,
        4,
        15,
    )
    assert (PIN_RETRY.default, PIN_RETRY.low, PIN_RETRY.high) == (1, 0, 5)
    assert (PIN_RETRY_WAIT.default, PIN_RETRY_WAIT.low, PIN_RETRY_WAIT.high) == (5, 5, 10)
    assert (COOLOFF_PERIOD.default, COOLOFF_PERIOD.low, COOLOFF_PERIOD.high) == (0, 0, 3600)
    legacy_expiry, legacy_limit = SESSION_EXPIRY[LEGACY], CALL_TIME_LIMIT[LEGACY]
    assert (legacy_expiry.default, legacy_expiry.low, legacy_expiry.high) == (1800, 60, 86400)
    assert (legacy_limit.default, legacy_limit.low, legacy_limit.high) == (14400, 60, 86400)
    assert legacy_limit.clamp and not legacy_expiry.clamp
    assert GEOMATCH_DEFAULT == {CURRENT: True, LEGACY: False}
    assert MAX_URL_LENGTH == 1000  # seed 000: "The max URL length can be 1000"
    assert PIN_LENGTH == (4, 15)
    assert set(RECORD_FILE_FORMATS) == {"mp3", "wav"}
    assert set(HTTP_METHODS) == {"GET", "POST"}


def test_minimal_create_gets_plivos_literal_defaults() -> None:
    current, legacy = create(CURRENT), create(LEGACY)
    assert (current.session_expiry, current.settings.call_time_limit) == (3600, 3600)
    assert (legacy.session_expiry, legacy.settings.call_time_limit) == (1800, 14400)
    assert current.settings.ring_timeout == legacy.settings.ring_timeout == 120
    assert (current.settings.geomatch, legacy.settings.geomatch) == (True, False)


def test_messages_are_plivos_documented_wording() -> None:
    # Seed 002, "API response codes": the only list of masking error messages.
    assert messages.invalid_phone("first_party") == (
        "Invalid parameter. first_party is not a valid phone number."
    )
    assert messages.invalid_phone("second_party") == (
        "Invalid parameter. second_party is not a valid phone number."
    )
    assert (
        messages.missing("first_party")
        == "Mandatory parameter missing. first_party must be present."
    )
    assert messages.missing("second_party") == (
        "Mandatory parameter missing. second_party must be present."
    )
    assert messages.out_of_range("session_expiry") == (
        "Invalid parameter. session_expiry is outside the allowed range."
    )
    assert messages.out_of_range("call_time_limit") == (
        "Invalid parameter. call_time_limit is outside the allowed range."
    )
    assert messages.not_boolean("record") == (
        "Invalid parameter. record allowed values are true or false."
    )
    assert messages.RECORD_FILE_FORMAT == (
        "Invalid parameter. record_file_format allowed values are mp3 or wav."
    )
    assert messages.not_url("recording_callback_url") == (
        "Invalid parameter. recording_callback_url should be a valid URL."
    )
    assert messages.url_too_long("recording_callback_url") == (
        "Invalid parameter. recording_callback_url should be under 1000 characters."
    )


def test_invalid_request_is_a_400() -> None:
    assert InvalidRequest("x").status_hint == 400
    assert InvalidRequest("x").message == "x"


# --- Defaults ------------------------------------------------------------------------------

# (attribute, expected in the current API, expected in the legacy API). Plivo gives no
# constant for the string and boolean defaults, so those are seed 001's literals.
DEFAULTS = [
    ("session_expiry", SESSION_EXPIRY[CURRENT].default, SESSION_EXPIRY[LEGACY].default),
    ("call_time_limit", CALL_TIME_LIMIT[CURRENT].default, CALL_TIME_LIMIT[LEGACY].default),
    ("ring_timeout", RING_TIMEOUT.default, RING_TIMEOUT.default),
    ("record", False, False),
    ("record_file_format", "mp3", "mp3"),
    ("recording_callback_url", "", ""),
    ("recording_callback_method", "POST", "POST"),
    ("callback_url", "", ""),
    ("callback_method", "POST", "POST"),
    ("initiate_call_to_first_party", False, False),
    ("first_party_play_url", "", ""),
    ("second_party_play_url", "", ""),
    ("is_pin_authentication_required", False, False),
    ("generate_pin", False, False),
    ("generate_pin_length", GENERATE_PIN_LENGTH.default, GENERATE_PIN_LENGTH.default),
    ("first_party_pin", "", ""),
    ("second_party_pin", "", ""),
    ("pin_prompt_play", "", ""),
    ("pin_retry", PIN_RETRY.default, PIN_RETRY.default),
    ("pin_retry_wait", PIN_RETRY_WAIT.default, PIN_RETRY_WAIT.default),
    ("incorrect_pin_play", "", ""),
    ("unknown_caller_play", "", ""),
    ("geomatch", GEOMATCH_DEFAULT[CURRENT], GEOMATCH_DEFAULT[LEGACY]),
    ("force_pin_authentication", False, False),
    ("create_session_with_single_party", False, False),
    ("virtual_number_cooloff_period", COOLOFF_PERIOD.default, COOLOFF_PERIOD.default),
]


@pytest.mark.parametrize(("name", "current", "legacy"), DEFAULTS)
def test_default_of_each_attribute(name: str, current: Any, legacy: Any) -> None:
    assert attribute(create(CURRENT), name) == current
    assert attribute(create(LEGACY), name) == legacy


def test_defaults_table_covers_every_setting() -> None:
    # A new SessionSettings field must get a row above.
    assert {row[0] for row in DEFAULTS} == {*SETTINGS_FIELDS, "session_expiry"}


def test_minimal_create_result() -> None:
    request = create()
    assert request.first_party == FIRST_E164
    assert request.second_party == SECOND_E164
    assert request.subaccount is None
    assert claimed_pins(request.settings) == []


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("blank", [None, ""])
def test_null_and_empty_mean_not_given(profile: Profile, blank: Any) -> None:
    # Every attribute sent as null or "" gives the same session as not sending it.
    everything = {name: blank for name, _, _ in DEFAULTS}
    assert parse_create(body(**everything), profile) == create(profile)


# --- Integers: zero, ranges, leniency -----------------------------------------------------

ZERO_IS_DEFAULT = [
    "session_expiry",
    "call_time_limit",
    "ring_timeout",
    "generate_pin_length",
    "pin_retry_wait",
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", ZERO_IS_DEFAULT)
@pytest.mark.parametrize("zero", [0, "0", 0.0, " 0 "])
def test_zero_means_default(profile: Profile, name: str, zero: Any) -> None:
    # Go and Java send 0 for every integer they were not given (plivo-wire.md 1.5, 3.4).
    assert attribute(create(profile, **{name: zero}), name) == INT_RULES[profile][name].default


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", ["pin_retry", "virtual_number_cooloff_period"])
@pytest.mark.parametrize("zero", [0, "0"])
def test_zero_is_a_real_value(profile: Profile, name: str, zero: Any) -> None:
    # pin_retry "Allowed: 0-5" (no retry) and a cool-off of 0 are values a client means.
    assert attribute(create(profile, **{name: zero}), name) == 0


def test_zero_pin_retry_differs_from_the_default() -> None:
    # Guards the test above: if pin_retry's default were 0 it could not tell the difference.
    assert PIN_RETRY.default != 0
    assert create(pin_retry=0).settings.pin_retry != create().settings.pin_retry


@pytest.mark.parametrize(("profile", "name", "rule"), REJECTING)
def test_range_bounds_are_inclusive(profile: Profile, name: str, rule: IntRule) -> None:
    for value in (rule.low, rule.high):
        if value == 0 and rule.zero_is_default:
            continue
        assert attribute(create(profile, **{name: value}), name) == value


@pytest.mark.parametrize(("profile", "name", "rule"), REJECTING)
def test_out_of_range_is_refused(profile: Profile, name: str, rule: IntRule) -> None:
    below = rule.low - 1 if rule.low - 1 != 0 else -1  # 0 may mean "the default"
    for value in (below, -1, rule.high + 1, rule.high * 1000, str(rule.high + 1)):
        assert create_error(profile, **{name: value}) == messages.out_of_range(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1440, 1440),
        ("1440", 1440),  # Ruby's update sends integers as strings
        (" 1440 ", 1440),
        (1440.0, 1440),  # an integral JSON float
        ("86400", 86400),
    ],
)
@pytest.mark.parametrize("name", ["session_expiry", "call_time_limit"])
def test_integer_spellings(name: str, value: Any, expected: int) -> None:
    assert attribute(create(**{name: value}), name) == expected


@given(data=st.data())
def test_any_in_range_integer_is_kept(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from(PROFILES))
    name, rule = data.draw(st.sampled_from(sorted(INT_RULES[profile].items())))
    value = data.draw(
        st.integers(rule.low, rule.high).filter(lambda v: v != 0 or not rule.zero_is_default)
    )
    spelled = data.draw(st.sampled_from([value, str(value), float(value)]))
    assert attribute(create(profile, **{name: spelled}), name) == value


INTEGER_JUNK = [
    "abc",
    "12abc",
    "1e3",
    "1.5",
    1.5,
    "",
    "0x10",
    "1 000",
    True,
    False,
    [60],
    {"v": 60},
]


@pytest.mark.parametrize(("profile", "name", "rule"), REJECTING)
@pytest.mark.parametrize("junk", [j for j in INTEGER_JUNK if j != ""])
def test_integer_junk_is_refused(profile: Profile, name: str, rule: IntRule, junk: Any) -> None:
    assert create_error(profile, **{name: junk}) == messages.not_integer(name)


@pytest.mark.parametrize("junk", ["١٢٠", "１２０", float("nan"), float("inf")])
def test_non_ascii_digits_and_non_finite_floats_are_refused(junk: Any) -> None:
    # str.isdigit() is true for Arabic-Indic and full-width digits; they are not JSON numbers.
    assert create_error(ring_timeout=junk) == messages.not_integer("ring_timeout")


@pytest.mark.parametrize("junk", ["--5", "+-5", "-+5", "++60"])
def test_integer_with_doubled_sign_is_refused_not_crashed(junk: str) -> None:
    # The text is junk, so it must be Plivo's 400 message, not a ValueError from int().
    assert create_error(session_expiry=junk) == messages.not_integer("session_expiry")


def test_integer_with_thousands_of_digits_is_refused_not_crashed() -> None:
    # Python refuses int() on more than 4300 digits (CVE-2020-10735 limit) with ValueError;
    # a client sending such a value must get a 400, whichever of the two wordings.
    with pytest.raises(InvalidRequest) as info:
        parse_create(body(call_time_limit="9" * 5000), CURRENT)
    assert info.value.message in (
        messages.out_of_range("call_time_limit"),
        messages.not_integer("call_time_limit"),
    )


# --- Legacy call_time_limit clamping (seed 000) -------------------------------------------

LEGACY_LIMIT = CALL_TIME_LIMIT[LEGACY]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # "1. Invalid - defaults to 14400"
        ("abc", LEGACY_LIMIT.default),
        ("1.5", LEGACY_LIMIT.default),
        (3600.5, LEGACY_LIMIT.default),
        (True, LEGACY_LIMIT.default),
        ([60], LEGACY_LIMIT.default),
        # "2. Below Min value - gets set to Min value"
        (LEGACY_LIMIT.low - 1, LEGACY_LIMIT.low),
        (1, LEGACY_LIMIT.low),
        (-5, LEGACY_LIMIT.low),
        ("59", LEGACY_LIMIT.low),
        # "3. Above Max value - gets set to Max value"
        (LEGACY_LIMIT.high + 1, LEGACY_LIMIT.high),
        (10**9, LEGACY_LIMIT.high),
        ("100000", LEGACY_LIMIT.high),
        # In range, and 0 (not given)
        (LEGACY_LIMIT.low, LEGACY_LIMIT.low),
        (LEGACY_LIMIT.high, LEGACY_LIMIT.high),
        ("1440", 1440),
        (0, LEGACY_LIMIT.default),
    ],
)
def test_legacy_call_time_limit_clamps(value: Any, expected: int) -> None:
    assert create(LEGACY, call_time_limit=value).settings.call_time_limit == expected


def test_legacy_clamps_to_seed_literals() -> None:
    # The same rule with seed 000's own numbers.
    assert create(LEGACY, call_time_limit="junk").settings.call_time_limit == 14400
    assert create(LEGACY, call_time_limit=10).settings.call_time_limit == 60
    assert create(LEGACY, call_time_limit=99999).settings.call_time_limit == 86400


def test_legacy_doubled_sign_gives_the_default_not_a_crash() -> None:
    # "--5" is invalid input, which seed 000 says defaults to 14400.
    assert create(LEGACY, call_time_limit="--5").settings.call_time_limit == 14400


@given(st.integers(-(10**12), 10**12).filter(lambda v: v != 0))
def test_legacy_clamp_property(value: int) -> None:
    expected = min(max(value, LEGACY_LIMIT.low), LEGACY_LIMIT.high)
    assert create(LEGACY, call_time_limit=value).settings.call_time_limit == expected


def test_current_call_time_limit_does_not_clamp() -> None:
    assert create_error(CURRENT, call_time_limit=59) == messages.out_of_range("call_time_limit")
    assert create_error(CURRENT, call_time_limit="abc") == messages.not_integer("call_time_limit")


@pytest.mark.parametrize("value", [59, 86401, -1])
def test_legacy_session_expiry_is_refused_not_clamped(value: int) -> None:
    assert create_error(LEGACY, session_expiry=value) == messages.out_of_range("session_expiry")
    assert create_error(LEGACY, session_expiry="junk") == messages.not_integer("session_expiry")


# --- Booleans -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("FALSE", False),
        (" true ", True),
    ],
)
@pytest.mark.parametrize(
    "name", ["record", "initiate_call_to_first_party", "geomatch", "force_pin_authentication"]
)
def test_boolean_spellings(name: str, value: Any, expected: bool) -> None:
    assert attribute(create(**{name: value}), name) is expected


@pytest.mark.parametrize("junk", ["yes", "no", "1", "0", "t", 1, 0, 1.0, [True], {"v": True}])
@pytest.mark.parametrize("name", BOOLEAN_FIELDS)
def test_boolean_junk_is_refused(name: str, junk: Any) -> None:
    assert create_error(**{name: junk}) == messages.not_boolean(name)


def test_record_not_boolean_message() -> None:
    assert (
        create_error(record="maybe")
        == "Invalid parameter. record allowed values are true or false."
    )


# --- Keys: case, aliases, unknown keys ----------------------------------------------------


def test_keys_in_any_case() -> None:
    request = parse_create(
        {"First_Party": FIRST, "SECOND_PARTY": SECOND, "Session_Expiry": 600, "RECORD": "true"},
        CURRENT,
    )
    assert (request.first_party, request.second_party) == (FIRST_E164, SECOND_E164)
    assert request.session_expiry == 600
    assert request.settings.record is True


def test_go_single_party_key_with_capital_p() -> None:
    # Go's struct tag is create_session_with_single_Party (plivo-wire.md 3.1).
    request = parse_create(
        {"first_party": FIRST, "create_session_with_single_Party": True}, CURRENT
    )
    assert request.settings.create_session_with_single_party is True
    assert request.second_party is None


def test_unknown_keys_are_ignored() -> None:
    noisy = body(session_uuid="abc-123", api_id="x", foo={"bar": [1]}, first_party_name="Ann")
    assert parse_create(noisy, CURRENT) == create()


@pytest.mark.parametrize(("alias", "name"), sorted(KEY_ALIASES.items()))
def test_alias_table_is_the_documented_one(alias: str, name: str) -> None:
    # Docs say is_pin_authentication, Java adds pin_authentication_required, Node's lodash
    # makes sub_account and geo_match (plivo-wire.md 3.2, 3.4, 4.1).
    assert {
        "is_pin_authentication": "is_pin_authentication_required",
        "pin_authentication_required": "is_pin_authentication_required",
        "sub_account": "subaccount",
        "geo_match": "geomatch",
    }[alias] == name


@pytest.mark.parametrize("alias", ["is_pin_authentication", "pin_authentication_required"])
def test_pin_authentication_aliases(alias: str) -> None:
    request = create(
        **{alias: True},
        pin_prompt_play=PROMPT,
        first_party_pin="1234",
        second_party_pin="4321",
    )
    assert request.settings.is_pin_authentication_required is True


def test_sub_account_and_geo_match_aliases() -> None:
    request = create(sub_account="SAZTA0ZJJHMDETOWQ4YI", geo_match=False)
    assert request.subaccount == "SAZTA0ZJJHMDETOWQ4YI"
    assert request.settings.geomatch is False


def test_alias_keys_in_any_case() -> None:
    assert create(Geo_Match="false").settings.geomatch is False


@pytest.mark.parametrize(
    "raw",
    [
        {"geomatch": True, "geo_match": False},
        {"geo_match": False, "geomatch": True},  # whichever comes first on the wire
        {"GeoMatch": True, "GEO_MATCH": False},
    ],
)
def test_documented_key_wins_over_alias(raw: dict[str, Any]) -> None:
    assert create(**raw).settings.geomatch is True


def test_documented_subaccount_wins_over_alias() -> None:
    assert create(sub_account="SA1", subaccount="SA2").subaccount == "SA2"
    assert create(subaccount="SA2", sub_account="SA1").subaccount == "SA2"


def test_alias_applies_when_documented_key_is_null() -> None:
    assert create(geomatch=None, geo_match=False).settings.geomatch is False


def test_normalize_keys() -> None:
    raw: dict[Any, Any] = {
        " First_Party ": FIRST,
        "RECORD": False,
        "callback_url": "",
        "ring_timeout": None,
        "Geo_Match": True,
        "Sub_Account": "SA1",
        1: "not a string key",
    }
    assert normalize_keys(raw) == {
        "first_party": FIRST,
        "record": False,
        "callback_url": "",  # "" is kept here; readers treat it as not given
        "geomatch": True,
        "subaccount": "SA1",
    }


def test_normalize_keys_documented_wins_and_input_untouched() -> None:
    raw = {"is_pin_authentication": False, "Is_Pin_Authentication_Required": True}
    assert normalize_keys(raw) == {"is_pin_authentication_required": True}
    assert raw == {"is_pin_authentication": False, "Is_Pin_Authentication_Required": True}


# --- Parties -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "+14155552671",
        "14155552671",  # without '+', as Plivo echoes it
        "0014155552671",  # international 00 prefix
        14155552671,  # a JSON integer
        "+1 (415) 555-2671",
        "1-415-555-2671",
        "+1.415.555.2671",
        " +14155552671 ",
    ],
)
@pytest.mark.parametrize("name", ["first_party", "second_party"])
def test_phone_spellings(name: str, spelling: Any) -> None:
    request = create(**{name: spelling})
    assert attribute_party(request, name) == E164("+14155552671", "US")


def attribute_party(request: SessionRequest, name: str) -> E164 | None:
    return request.first_party if name == "first_party" else request.second_party


@pytest.mark.parametrize(
    "junk",
    [
        "abc",
        "12345",
        "+1415555CALL",
        "+10005550100",
        "1" * 16,
        True,
        14155552671.0,
        [FIRST],
        {"n": FIRST},
    ],
)
@pytest.mark.parametrize("name", ["first_party", "second_party"])
def test_invalid_phone(name: str, junk: Any) -> None:
    assert create_error(**{name: junk}) == messages.invalid_phone(name)


@pytest.mark.parametrize("blank", ["absent", None, ""])
def test_missing_first_party(blank: Any) -> None:
    raw = {"second_party": SECOND} if blank == "absent" else body(first_party=blank)
    with pytest.raises(InvalidRequest) as info:
        parse_create(raw, CURRENT)
    assert info.value.message == messages.missing("first_party")


@pytest.mark.parametrize("blank", ["absent", None, ""])
def test_missing_second_party(blank: Any) -> None:
    raw = {"first_party": FIRST} if blank == "absent" else body(second_party=blank)
    with pytest.raises(InvalidRequest) as info:
        parse_create(raw, CURRENT)
    assert info.value.message == messages.missing("second_party")


@pytest.mark.parametrize("profile", PROFILES)
def test_missing_both_parties_names_first_party(profile: Profile) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_create({}, profile)
    assert info.value.message == messages.missing("first_party")


@pytest.mark.parametrize("second", [FIRST, FIRST[1:], "00" + FIRST[1:], int(FIRST[1:])])
def test_same_party_twice(second: Any) -> None:
    # The same number in another spelling is still the same party.
    assert create_error(second_party=second) == messages.SAME_PARTY


@pytest.mark.parametrize("flag", [True, "true", "TRUE"])
@pytest.mark.parametrize("present", ["first_party", "second_party"])
def test_single_party_either_alone(flag: Any, present: str) -> None:
    raw = {present: FIRST, "create_session_with_single_party": flag}
    request = parse_create(raw, CURRENT)
    assert attribute_party(request, present) == FIRST_E164
    other = "second_party" if present == "first_party" else "first_party"
    assert attribute_party(request, other) is None
    assert request.settings.create_session_with_single_party is True


def test_single_party_with_both_parties() -> None:
    request = create(create_session_with_single_party=True)
    assert (request.first_party, request.second_party) == (FIRST_E164, SECOND_E164)


@pytest.mark.parametrize("parties", [{}, {"first_party": None, "second_party": ""}])
def test_single_party_with_neither_party(parties: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_create({**parties, "create_session_with_single_party": True}, CURRENT)
    assert info.value.message == messages.ONE_PARTY_MISSING


def test_single_party_same_party_twice_still_refused() -> None:
    assert (
        create_error(create_session_with_single_party=True, second_party=FIRST)
        == messages.SAME_PARTY
    )


def test_single_party_false_still_needs_both() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_create({"first_party": FIRST, "create_session_with_single_party": "false"}, CURRENT)
    assert info.value.message == messages.missing("second_party")


# --- Recording ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("mp3", "mp3"), ("wav", "wav"), ("MP3", "mp3"), (" Wav ", "wav")]
)
def test_record_file_format(value: str, expected: str) -> None:
    assert create(record_file_format=value).settings.record_file_format == expected


@pytest.mark.parametrize("junk", ["ogg", "mp4", ".mp3", "mp3,wav", 3])
def test_record_file_format_junk(junk: Any) -> None:
    assert create_error(record_file_format=junk) == messages.RECORD_FILE_FORMAT


# --- URLs ---------------------------------------------------------------------------------


def url_of_length(length: int, suffix: str = ".mp3") -> str:
    head = "https://example.com/"
    return head + "a" * (length - len(head) - len(suffix)) + suffix


@pytest.mark.parametrize("name", URL_FIELDS + AUDIO_FIELDS)
def test_url_of_exactly_max_length_is_accepted(name: str) -> None:
    url = url_of_length(MAX_URL_LENGTH)
    assert len(url) == 1000
    assert attribute(create(**{name: url}), name) == url


@pytest.mark.parametrize("name", URL_FIELDS + AUDIO_FIELDS)
def test_url_one_over_max_length_is_refused(name: str) -> None:
    url = url_of_length(MAX_URL_LENGTH + 1)
    assert len(url) == 1001
    assert create_error(**{name: url}) == messages.url_too_long(name)


@pytest.mark.parametrize(
    "junk",
    [
        "ftp://example.com/a.mp3",
        "example.com/a.mp3",
        "//example.com/a.mp3",
        "http://",
        "https:///a.mp3",
        "http://exa mple.com/a.mp3",
        "https://example.com:99999/a.mp3",
        "javascript:alert(1)//a.mp3",
        "not a url.mp3",
        12345,
    ],
)
@pytest.mark.parametrize("name", URL_FIELDS + AUDIO_FIELDS)
def test_invalid_url(name: str, junk: Any) -> None:
    assert create_error(**{name: junk}) == messages.not_url(name)


@pytest.mark.parametrize("length", [MAX_URL_LENGTH + 1, 5000, 1_000_001])
def test_any_url_over_max_length_gets_the_length_message(length: int) -> None:
    # Seed 000: "For longer URLs, an error is thrown", worded as in seed 002 however long.
    url = url_of_length(length)
    assert create_error(recording_callback_url=url) == messages.url_too_long(
        "recording_callback_url"
    )


@pytest.mark.parametrize("junk", ["https://example.com/a\x00.mp3", "https://example.com/\na.mp3"])
@pytest.mark.parametrize("name", URL_FIELDS + AUDIO_FIELDS)
def test_url_with_control_characters_is_refused(name: str, junk: str) -> None:
    # Either wording is fair; what matters is that NUL and line breaks never get stored.
    assert create_error(**{name: junk}) in (messages.not_url(name), messages.not_text(name))


@pytest.mark.parametrize("junk", [True, ["https://example.com/a.mp3"], {"u": 1}, 1.5])
def test_url_that_is_not_text(junk: Any) -> None:
    assert create_error(callback_url=junk) == messages.not_text("callback_url")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/a.mp3", "https://example.com/a.mp3"),
        ("http://example.com:8080/a.mp3?x=1", "http://example.com:8080/a.mp3?x=1"),
        ("HTTPS://EXAMPLE.COM/A.MP3", "HTTPS://EXAMPLE.COM/A.MP3"),
        ("https://[::1]/a.mp3", "https://[::1]/a.mp3"),
        ("  https://example.com/a.mp3  ", "https://example.com/a.mp3"),
    ],
)
@pytest.mark.parametrize("name", URL_FIELDS + AUDIO_FIELDS)
def test_valid_url(name: str, value: str, expected: str) -> None:
    assert attribute(create(**{name: value}), name) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/prompt.wav",
        "https://example.com/prompt.mp3",
        "https://example.com/prompt.MP3",
        "https://s3.example.com/prompt.mp3?X-Amz-Signature=abc&x=.ogg",  # query ignored
        "https://example.com/prompt.wav#t=1",
    ],
)
@pytest.mark.parametrize("name", AUDIO_FIELDS)
def test_audio_url_accepted(name: str, url: str) -> None:
    assert attribute(create(**{name: url}), name) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/prompt.ogg",
        "https://example.com/prompt?file=x.mp3",  # the suffix is in the query, not the path
        "https://example.com/",
        "https://example.com",
        "https://example.com/prompt.mp3x",
        "https://example.com/mp3",
    ],
)
@pytest.mark.parametrize("name", AUDIO_FIELDS)
def test_audio_url_must_name_an_mp3_or_wav_file(name: str, url: str) -> None:
    assert create_error(**{name: url}) == messages.not_audio_url(name)


@pytest.mark.parametrize("name", ["recording_callback_url", "callback_url"])
def test_callback_urls_need_no_audio_suffix(name: str) -> None:
    assert (
        attribute(create(**{name: "https://example.com/hook"}), name) == "https://example.com/hook"
    )


@pytest.mark.parametrize("name", ["recording_callback_method", "callback_method"])
@pytest.mark.parametrize(
    ("value", "expected"), [("GET", "GET"), ("get", "GET"), ("post", "POST"), (" Post ", "POST")]
)
def test_http_method(name: str, value: str, expected: str) -> None:
    assert attribute(create(**{name: value}), name) == expected


@pytest.mark.parametrize("name", ["recording_callback_method", "callback_method"])
@pytest.mark.parametrize("junk", ["PUT", "DELETE", "GETS", 1])
def test_http_method_junk(name: str, junk: Any) -> None:
    assert create_error(**{name: junk}) == messages.not_method(name)


# --- PIN authentication -------------------------------------------------------------------


def pin_body(**extra: Any) -> dict[str, Any]:
    return {"is_pin_authentication_required": True, "pin_prompt_play": PROMPT, **extra}


@pytest.mark.parametrize("pin", ["1234", "0123", "0" * 15, "123456789012345", 1234])
@pytest.mark.parametrize("name", ["first_party_pin", "second_party_pin"])
def test_valid_pin(name: str, pin: Any) -> None:
    assert attribute(create(**{name: pin}), name) == str(pin)


@pytest.mark.parametrize(
    "pin", ["123", "1" * 16, "12a4", "12 34", "-1234", "12.4", "١٢٣٤", "１２３４", 123]
)
@pytest.mark.parametrize("name", ["first_party_pin", "second_party_pin"])
def test_invalid_pin(name: str, pin: Any) -> None:
    assert create_error(**{name: pin}) == messages.not_pin(name)


def test_pins_must_differ() -> None:
    assert (
        create_error(**pin_body(first_party_pin="1234", second_party_pin="1234"))
        == messages.PINS_EQUAL
    )
    # Also when PIN authentication is off: the PINs are still stored.
    assert create_error(first_party_pin="5555", second_party_pin=5555) == messages.PINS_EQUAL


def test_pin_authentication_with_given_pins() -> None:
    request = create(**pin_body(first_party_pin="1234", second_party_pin="4321"))
    settings = request.settings
    assert settings.is_pin_authentication_required is True
    assert (settings.first_party_pin, settings.second_party_pin) == ("1234", "4321")
    assert settings.pin_prompt_play == PROMPT
    assert claimed_pins(request.settings) != []


def test_pin_authentication_needs_pin_prompt_play() -> None:
    raw = pin_body(first_party_pin="1234", second_party_pin="4321", pin_prompt_play="")
    assert create_error(**raw) == messages.missing("pin_prompt_play")


def test_pin_authentication_needs_pins_unless_generated() -> None:
    assert create_error(**pin_body()) == messages.missing("first_party_pin")
    assert create_error(**pin_body(first_party_pin="1234")) == messages.missing("second_party_pin")
    assert create_error(**pin_body(second_party_pin="1234")) == messages.missing("first_party_pin")
    assert create_error(**pin_body(generate_pin=False)) == messages.missing("first_party_pin")


def test_generated_pins_need_no_pins() -> None:
    request = create(**pin_body(generate_pin=True, generate_pin_length=6))
    assert request.settings.generate_pin is True
    assert request.settings.generate_pin_length == 6
    assert claimed_pins(request.settings) != []


def test_pins_not_required_without_pin_authentication() -> None:
    request = create(is_pin_authentication_required=False, first_party_pin="1234")
    assert claimed_pins(request.settings) == []
    assert request.settings.first_party_pin == "1234"


def test_pin_attributes() -> None:
    request = create(
        **pin_body(
            first_party_pin="1234",
            second_party_pin="4321",
            pin_retry="3",
            pin_retry_wait=10,
            incorrect_pin_play="https://example.com/wrong.mp3",
            unknown_caller_play="https://example.com/who.wav",
            force_pin_authentication="true",
        )
    )
    settings = request.settings
    assert (settings.pin_retry, settings.pin_retry_wait) == (3, 10)
    assert settings.incorrect_pin_play == "https://example.com/wrong.mp3"
    assert settings.unknown_caller_play == "https://example.com/who.wav"
    assert settings.force_pin_authentication is True


# --- Other attributes ---------------------------------------------------------------------


def test_subaccount() -> None:
    assert create(subaccount="SAZTA0ZJJHMDETOWQ4YI").subaccount == "SAZTA0ZJJHMDETOWQ4YI"
    assert create(subaccount=" SAZTA0ZJJHMDETOWQ4YI ").subaccount == "SAZTA0ZJJHMDETOWQ4YI"
    assert create(subaccount="   ").subaccount is None
    assert create_error(subaccount={"id": 1}) == messages.not_text("subaccount")


def test_full_python_sdk_create() -> None:
    # All 29 keys the Python SDK can send, with native JSON types (plivo-wire.md 2.2).
    raw = {
        "first_party": "917708772011",
        "second_party": "918220568648",
        "session_expiry": 600,
        "call_time_limit": 1800,
        "record": True,
        "record_file_format": "wav",
        "recording_callback_url": "https://example.com/rec",
        "initiate_call_to_first_party": True,
        "callback_url": "https://example.com/cb",
        "callback_method": "GET",
        "ring_timeout": 45,
        "first_party_play_url": "https://example.com/first.mp3",
        "second_party_play_url": "https://example.com/second.mp3",
        "recording_callback_method": "GET",
        "is_pin_authentication_required": True,
        "generate_pin": False,
        "generate_pin_length": 8,
        "first_party_pin": "1234",
        "second_party_pin": "4321",
        "pin_prompt_play": PROMPT,
        "pin_retry": 2,
        "pin_retry_wait": 7,
        "incorrect_pin_play": "https://example.com/wrong.wav",
        "unknown_caller_play": "https://example.com/who.mp3",
        "subaccount": "SAZTA0ZJJHMDETOWQ4YI",
        "geomatch": False,
        "create_session_with_single_party": False,
        "virtual_number_cooloff_period": 300,
        "force_pin_authentication": True,
    }
    assert len(raw) == 29
    request = parse_create(raw, CURRENT)
    assert request == SessionRequest(
        first_party=E164("+917708772011", "IN"),
        second_party=E164("+918220568648", "IN"),
        session_expiry=600,
        subaccount="SAZTA0ZJJHMDETOWQ4YI",
        settings=SessionSettings(
            call_time_limit=1800,
            ring_timeout=45,
            record=True,
            record_file_format="wav",
            recording_callback_url="https://example.com/rec",
            recording_callback_method="GET",
            callback_url="https://example.com/cb",
            callback_method="GET",
            initiate_call_to_first_party=True,
            first_party_play_url="https://example.com/first.mp3",
            second_party_play_url="https://example.com/second.mp3",
            is_pin_authentication_required=True,
            generate_pin=False,
            generate_pin_length=8,
            first_party_pin="1234",
            second_party_pin="4321",
            pin_prompt_play=PROMPT,
            pin_retry=2,
            pin_retry_wait=7,
            incorrect_pin_play="https://example.com/wrong.wav",
            unknown_caller_play="https://example.com/who.mp3",
            geomatch=False,
            force_pin_authentication=True,
            create_session_with_single_party=False,
            virtual_number_cooloff_period=300,
        ),
    )


def test_java_create_with_zeros_and_extra_key() -> None:
    # Java sends every primitive: zeros for unset ints, geomatch true, record false, and
    # (by Jackson's is-getter rule) pin_authentication_required too (plivo-wire.md 3.4).
    raw = body(
        session_expiry=0,
        call_time_limit=0,
        ring_timeout=0,
        virtual_number_cooloff_period=0,
        geomatch=True,
        record=False,
        initiate_call_to_first_party=False,
        is_pin_authentication_required=False,
        pin_authentication_required=False,
        generate_pin=False,
        create_session_with_single_party=False,
        force_pin_authentication=False,
    )
    assert parse_create(raw, CURRENT) == create(CURRENT)


def test_go_create_with_zero_expiry() -> None:
    # Go always sends "session_expiry":0 (plivo-wire.md 3.1).
    assert parse_create(body(session_expiry=0), CURRENT).session_expiry == 3600


def test_first_fault_in_plivos_order() -> None:
    # Seed 002 lists the messages in this order; a body with every fault is refused with
    # the first, and fixing it reveals the next.
    raw: dict[str, Any] = {
        "first_party": "junk",
        "second_party": "junk",
        "session_expiry": 1,
        "call_time_limit": 1,
        "record": "maybe",
        "record_file_format": "ogg",
        "recording_callback_url": "ftp://example.com",
    }
    fixes = [
        ("first_party", FIRST, messages.invalid_phone("first_party")),
        ("second_party", SECOND, messages.invalid_phone("second_party")),
        ("session_expiry", 600, messages.out_of_range("session_expiry")),
        ("call_time_limit", 600, messages.out_of_range("call_time_limit")),
        ("record", True, messages.not_boolean("record")),
        ("record_file_format", "wav", messages.RECORD_FILE_FORMAT),
        (
            "recording_callback_url",
            "https://example.com",
            messages.not_url("recording_callback_url"),
        ),
    ]
    for name, fixed, expected in fixes:
        with pytest.raises(InvalidRequest) as info:
            parse_create(raw, CURRENT)
        assert info.value.message == expected
        raw[name] = fixed
    assert parse_create(raw, CURRENT).settings.recording_callback_url == "https://example.com"


def test_body_is_not_modified() -> None:
    raw = body(First_Party=FIRST, geo_match=False, ring_timeout="45")
    snapshot = dict(raw)
    parse_create(raw, CURRENT)
    assert raw == snapshot


# --- parse_update -------------------------------------------------------------------------


def test_update_with_nothing() -> None:
    assert parse_update({}, CURRENT) == SessionUpdate()


def test_update_python_sdk_body() -> None:
    # Captured from the Python SDK (plivo-wire.md 2.2): session_uuid rides along.
    update = parse_update(
        {"session_uuid": "abc-123", "call_time_limit": 14600, "record": True}, CURRENT
    )
    assert update == SessionUpdate(settings={"call_time_limit": 14600, "record": True})


def test_update_java_body_changes_only_record() -> None:
    # Java always sends the three time attributes as 0 and two booleans (plivo-wire.md 3.4).
    raw = {
        "session_expiry": 0,
        "call_time_limit": 0,
        "ring_timeout": 0,
        "record": False,
        "create_session_with_single_party": False,
    }
    assert parse_update(raw, CURRENT) == SessionUpdate(settings={"record": False})


def test_update_ruby_strings() -> None:
    # Ruby's update only takes strings and booleans (plivo-wire.md 3.3).
    update = parse_update(
        {"call_time_limit": "1440", "record": "true", "session_expiry": "600"}, CURRENT
    )
    assert update.settings == {"call_time_limit": 1440, "record": True}
    assert update.session_expiry == 600


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("record", "false", False),
        ("recording_callback_url", "https://example.com/rec", "https://example.com/rec"),
        ("record_file_format", "WAV", "wav"),
        ("recording_callback_method", "get", "GET"),
        ("call_time_limit", "7200", 7200),
        ("callback_url", "https://example.com/cb", "https://example.com/cb"),
        ("callback_method", "GET", "GET"),
        ("ring_timeout", 30, 30),
        ("first_party_play_url", "https://example.com/a.mp3", "https://example.com/a.mp3"),
        ("second_party_play_url", "https://example.com/b.wav", "https://example.com/b.wav"),
    ],
)
def test_update_each_attribute_alone(name: str, value: Any, expected: Any) -> None:
    update = parse_update({name: value}, CURRENT)
    assert update == SessionUpdate(settings={name: expected})


def test_update_session_expiry() -> None:
    assert parse_update({"session_expiry": 600}, CURRENT) == SessionUpdate(session_expiry=600)
    assert parse_update({"Session_Expiry": "120"}, LEGACY).session_expiry == 120


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", ["session_expiry", "call_time_limit", "ring_timeout"])
@pytest.mark.parametrize("zero", [0, "0", 0.0])
def test_update_zero_changes_nothing(profile: Profile, name: str, zero: Any) -> None:
    assert parse_update({name: zero}, profile) == SessionUpdate()


@pytest.mark.parametrize("profile", PROFILES)
def test_update_session_expiry_out_of_range(profile: Profile) -> None:
    rule = SESSION_EXPIRY[profile]
    for value in (rule.low - 1, rule.high + 1, -5):
        assert update_error({"session_expiry": value}, profile) == messages.out_of_range(
            "session_expiry"
        )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"call_time_limit": 59}, messages.out_of_range("call_time_limit")),
        ({"call_time_limit": "abc"}, messages.not_integer("call_time_limit")),
        ({"ring_timeout": RING_TIMEOUT.high + 1}, messages.out_of_range("ring_timeout")),
        ({"ring_timeout": "abc"}, messages.not_integer("ring_timeout")),
        ({"session_expiry": "abc"}, messages.not_integer("session_expiry")),
        ({"record": "maybe"}, messages.not_boolean("record")),
        ({"record_file_format": "ogg"}, messages.RECORD_FILE_FORMAT),
        ({"callback_method": "PUT"}, messages.not_method("callback_method")),
        ({"recording_callback_method": "PATCH"}, messages.not_method("recording_callback_method")),
        ({"callback_url": "ftp://example.com"}, messages.not_url("callback_url")),
        (
            {"recording_callback_url": url_of_length(1001)},
            messages.url_too_long("recording_callback_url"),
        ),
        ({"first_party": "junk"}, messages.invalid_phone("first_party")),
        ({"second_party": "12345"}, messages.invalid_phone("second_party")),
    ],
)
def test_update_errors(raw: dict[str, Any], expected: str) -> None:
    assert update_error(raw) == expected


def test_update_accepts_url_of_max_length() -> None:
    url = url_of_length(1000)
    assert parse_update({"callback_url": url}, CURRENT).settings == {"callback_url": url}


@pytest.mark.parametrize(
    "name",
    ["callback_url", "recording_callback_url", "first_party_play_url", "second_party_play_url"],
)
@pytest.mark.parametrize("blank", ["", "   "])
def test_update_clears_url_with_empty_string(name: str, blank: str) -> None:
    assert parse_update({name: blank}, CURRENT) == SessionUpdate(settings={name: ""})


@pytest.mark.parametrize("name", ["callback_url", "recording_callback_url"])
def test_update_null_url_changes_nothing(name: str) -> None:
    assert parse_update({name: None}, CURRENT) == SessionUpdate()


@pytest.mark.parametrize(
    "name", ["record", "record_file_format", "callback_method", "call_time_limit"]
)
def test_update_empty_non_url_changes_nothing(name: str) -> None:
    assert parse_update({name: ""}, CURRENT) == SessionUpdate()


def test_update_parties() -> None:
    # Allowed on single-party sessions (seed 004); the service decides, the parser reads.
    update = parse_update({"first_party": "14155552671", "Second_Party": FIRST}, CURRENT)
    assert update.first_party == E164("+14155552671", "US")
    assert update.second_party == FIRST_E164
    assert update.fixed == {} and update.settings == {}


@pytest.mark.parametrize(
    "raw",
    [
        {"create_session_with_single_party": True},
        {"create_session_with_single_Party": "false"},
        {"session_uuid": "c28b77d4-21e7-43bd-9447-04bfee92e651"},
        {"api_id": "x", "whatever": 1},
    ],
)
def test_update_ignores_sdk_noise(raw: dict[str, Any]) -> None:
    assert parse_update(raw, CURRENT) == SessionUpdate()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("initiate_call_to_first_party", "true", True),
        ("is_pin_authentication_required", False, False),
        ("pin_prompt_play", PROMPT, PROMPT),
        ("pin_retry", "2", 2),
        ("pin_retry", 0, 0),
        ("pin_retry_wait", 7, 7),
        ("incorrect_pin_play", "https://example.com/wrong.mp3", "https://example.com/wrong.mp3"),
        ("unknown_caller_play", "https://example.com/who.wav", "https://example.com/who.wav"),
        ("geomatch", "false", False),
        ("subaccount", "SAZTA0ZJJHMDETOWQ4YI", "SAZTA0ZJJHMDETOWQ4YI"),
        ("generate_pin", True, True),
        ("generate_pin_length", "6", 6),
        ("first_party_pin", "1234", "1234"),
        ("second_party_pin", 4321, "4321"),
        ("force_pin_authentication", False, False),
        ("virtual_number_cooloff_period", 0, 0),
    ],
)
def test_update_collects_immutable_attributes(name: str, value: Any, expected: Any) -> None:
    # The service compares these with the session's values and refuses a change.
    assert parse_update({name: value}, CURRENT) == SessionUpdate(fixed={name: expected})


def test_update_fixed_covers_every_immutable_but_the_parties() -> None:
    tested = {
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
    }
    assert set(IMMUTABLE) - {"first_party", "second_party"} == tested


@pytest.mark.parametrize(
    ("raw", "name", "expected"),
    [
        ({"geo_match": False}, "geomatch", False),
        ({"sub_account": "SA1"}, "subaccount", "SA1"),
        ({"is_pin_authentication": True}, "is_pin_authentication_required", True),
        ({"Geomatch": True, "geo_match": False}, "geomatch", True),
    ],
)
def test_update_fixed_through_aliases(raw: dict[str, Any], name: str, expected: Any) -> None:
    assert parse_update(raw, CURRENT).fixed == {name: expected}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"pin_retry": "abc"}, messages.not_integer("pin_retry")),
        (
            {"virtual_number_cooloff_period": True},
            messages.not_integer("virtual_number_cooloff_period"),
        ),
        ({"geomatch": "maybe"}, messages.not_boolean("geomatch")),
        ({"first_party_pin": "12"}, messages.not_pin("first_party_pin")),
        (
            {"pin_prompt_play": "https://example.com/p.ogg"},
            messages.not_audio_url("pin_prompt_play"),
        ),
        ({"unknown_caller_play": "nope"}, messages.not_url("unknown_caller_play")),
        ({"subaccount": ["SA1"]}, messages.not_text("subaccount")),
    ],
)
def test_update_fixed_junk(raw: dict[str, Any], expected: str) -> None:
    assert update_error(raw) == expected


def test_update_mixed_body() -> None:
    update = parse_update(
        {
            "session_uuid": "abc",
            "Record": "TRUE",
            "callback_url": "",
            "session_expiry": 900,
            "ring_timeout": 0,
            "geomatch": True,
            "first_party": FIRST,
        },
        CURRENT,
    )
    assert update == SessionUpdate(
        settings={"record": True, "callback_url": ""},
        session_expiry=900,
        first_party=FIRST_E164,
        fixed={"geomatch": True},
    )


def test_updatable_and_immutable_lists_match_seed_004() -> None:
    # Seed 004's attributes, and its "cannot be updated for the active session" list
    # (the capitals in "Second_party" and "Unknown_caller_play" are scraping artefacts).
    assert set(UPDATABLE) == {
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
    }
    documented_fixed = {
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
    }
    assert documented_fixed <= set(IMMUTABLE)
    assert not set(UPDATABLE) & set(IMMUTABLE)


def test_updatable_settings_are_settings_fields() -> None:
    # An update stores each updatable setting in the column of that name.
    assert set(UPDATABLE) - {"session_expiry"} <= set(SETTINGS_FIELDS)
