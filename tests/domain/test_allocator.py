"""Allocation rules, PINs, identifiers and the session lifecycle.

The masking rule (veil/domain/allocator.py): a caller dialling a virtual number must
identify exactly one session, so a session claims one key per party and per PIN on its
number until its expiry plus cool-off. Identifiers must pass the checks Plivo's SDKs run.
"""

from __future__ import annotations

import string
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plivo.exceptions import AuthenticationError
from plivo.rest.client import fetch_credentials
from plivo.utils import is_valid_mainaccount, is_valid_subaccount

from veil.domain.allocator import (
    Candidate,
    claim_keys,
    overlap_load,
    party_key,
    pin_key,
    rank_numbers,
)
from veil.domain.ids import (
    AUTH_ID_LENGTH,
    is_auth_id,
    is_uuid,
    new_auth_id,
    new_auth_token,
    new_uuid,
)
from veil.domain.pins import generate_pin, pick_pin_pair
from veil.domain.session import Session, Status, session_duration
from veil.domain.session_params import (
    COOLOFF_PERIOD,
    GENERATE_PIN_LENGTH,
    PIN_LENGTH,
    Profile,
    SessionSettings,
    parse_create,
)

# --- Claims -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parties", "pins", "keys"),
    [
        (["+14155552671", "+919003459051"], [], ["p:+14155552671", "p:+919003459051"]),
        (
            ["+14155552671", "+919003459051"],
            ["1234", "4321"],
            ["p:+14155552671", "p:+919003459051", "pin:1234", "pin:4321"],
        ),
        # A single-party session stores the missing party as "" and claims nothing for it.
        (["+14155552671", ""], [], ["p:+14155552671"]),
        (["", "+919003459051"], ["", ""], ["p:+919003459051"]),
        ([], [], []),
    ],
)
def test_claim_keys(parties: list[str], pins: list[str], keys: list[str]) -> None:
    assert claim_keys(parties, pins) == keys


def test_party_and_pin_keys_never_collide() -> None:
    # A 15-digit PIN can equal a number's digits; their claims must still differ.
    digits = "919003459051123"
    assert party_key("+" + digits) != pin_key(digits)
    assert party_key(digits) != pin_key(digits)
    assert len(set(claim_keys(["+" + digits], [digits]))) == 2


@pytest.mark.parametrize(
    ("candidates", "sticky", "ranked"),
    [
        ([], None, []),
        ([], 7, []),
        ([(3, 0), (1, 0), (2, 0)], None, [1, 2, 3]),  # an idle pool fills like first-fit
        ([(1, 0), (2, 5), (3, 2)], None, [2, 3, 1]),  # the most loaded first
        ([(1, 4), (2, 4), (3, 1)], None, [1, 2, 3]),  # equal loads: the lowest id
        ([(1, 0), (2, 5), (3, 2)], 1, [1, 2, 3]),  # sticky first, however light
        ([(1, 0), (2, 5)], 9, [2, 1]),  # a sticky number that is not free changes nothing
    ],
)
def test_rank_numbers(
    candidates: list[tuple[int, int]], sticky: int | None, ranked: list[int]
) -> None:
    assert rank_numbers([Candidate(n, w) for n, w in candidates], sticky) == ranked


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20)), unique_by=lambda c: c[0]))
def test_rank_numbers_orders_by_load_then_id(candidates: list[tuple[int, int]]) -> None:
    ranked = rank_numbers([Candidate(n, w) for n, w in candidates], None)
    load = dict(candidates)
    assert sorted(ranked) == sorted(load)
    assert ranked == sorted(ranked, key=lambda n: (-load[n], n))


@pytest.mark.parametrize(
    ("ends", "load"),
    [
        ([], 0),
        ([1100, 1100], 200),  # two claims, ending before the new session does
        ([1100, 9000], 700),  # a claim counts only while the new session would hold
        ([1000, 900], 0),  # ended claims count nothing
    ],
)
def test_overlap_load(ends: list[int], load: int) -> None:
    assert overlap_load(ends, now=1000, horizon=1600) == load


def test_overlap_load_counts_the_claims_that_end_last() -> None:
    # Two of four claims count: those ending at 9000 (until the horizon) and 1500.
    assert overlap_load([1100, 9000, 1200, 1500], now=1000, horizon=1600, most=2) == 1100


# --- PINs -------------------------------------------------------------------------------------

PIN_LENGTHS = range(GENERATE_PIN_LENGTH.low, GENERATE_PIN_LENGTH.high + 1)


@pytest.mark.parametrize("length", PIN_LENGTHS)
def test_generate_pin_shape(length: int) -> None:
    for _ in range(50):
        pin = generate_pin(length)
        assert len(pin) == length
        assert set(pin) <= set(string.digits)


@pytest.mark.parametrize("length", PIN_LENGTHS)
def test_generated_pins_pass_the_pin_rules(length: int) -> None:
    # What Veil generates must be what it accepts from a client (4-15 digits, different).
    assert PIN_LENGTH[0] <= length <= PIN_LENGTH[1]
    first, second = fresh_pair(length)
    request = parse_create(
        {
            "first_party": "+14155552671",
            "second_party": "+919003459051",
            "first_party_pin": first,
            "second_party_pin": second,
        },
        Profile.CURRENT,
    )
    assert (request.settings.first_party_pin, request.settings.second_party_pin) == (first, second)


def test_generate_pin_uses_every_digit_in_every_position() -> None:
    # Leading zeros are allowed, and no digit is missing anywhere. With 2000 draws the
    # chance that a fair generator misses one digit in one of 4 positions is below 1e-80.
    pins = [generate_pin(4) for _ in range(2000)]
    for position in range(4):
        assert set(Counter(pin[position] for pin in pins)) == set(string.digits)


def test_generate_pin_is_not_constant() -> None:
    assert len({generate_pin(15) for _ in range(100)}) > 95


@pytest.mark.parametrize("length", [GENERATE_PIN_LENGTH.low, GENERATE_PIN_LENGTH.high])
def test_fresh_pin_pair_shape(length: int) -> None:
    for _ in range(200):
        first, second = fresh_pair(length)
        assert first != second
        assert len(first) == len(second) == length
        assert (first + second).isdigit()


def test_fresh_pin_pair_redraws_a_collision() -> None:
    # With one-digit PINs a tenth of naive pairs would collide: 2000 pairs without a
    # single one show the second PIN is redrawn (a naive pair passes with p = 0.9**2000).
    for _ in range(2000):
        first, second = fresh_pair(1)
        assert first != second


def fresh_pair(length: int) -> tuple[str, str]:
    """PINs for a number where none is in use yet."""
    pair = pick_pin_pair(length, ())
    assert pair is not None
    return pair


def all_pins(length: int) -> list[str]:
    return [f"{i:0{length}d}" for i in range(10**length)]


def check_pair(pair: tuple[str, str] | None, length: int, used: set[str]) -> tuple[str, str]:
    assert pair is not None
    first, second = pair
    assert first != second
    assert len(first) == len(second) == length
    assert first.isdigit() and second.isdigit()
    assert first not in used and second not in used
    return first, second


@pytest.mark.parametrize("length", [GENERATE_PIN_LENGTH.low, 6, GENERATE_PIN_LENGTH.high])
def test_pick_pin_pair_on_a_fresh_number(length: int) -> None:
    for _ in range(200):
        check_pair(pick_pin_pair(length, set()), length, set())


@pytest.mark.parametrize("share", [0.1, 0.5, 0.51, 0.9, 0.999])
def test_pick_pin_pair_avoids_used_pins(share: float) -> None:
    # Below and above the half-full switch from random tries to drawing from the free ones.
    pins = all_pins(4)
    used = set(pins[: int(len(pins) * share)])
    for _ in range(50):
        check_pair(pick_pin_pair(4, used), 4, used)


def test_pick_pin_pair_finds_the_last_two_free_pins() -> None:
    # A crowded number still gets its last PINs rather than a false "pool exhausted".
    free = {"0042", "9999"}
    used = set(all_pins(4)) - free
    for _ in range(20):
        assert set(check_pair(pick_pin_pair(4, used), 4, used)) == free


@pytest.mark.parametrize("left", [0, 1])
def test_pick_pin_pair_when_fewer_than_two_are_left(left: int) -> None:
    used = set(all_pins(4)[left:])
    assert pick_pin_pair(4, used) is None


def test_pick_pin_pair_accepts_any_collection() -> None:
    used = ["1234", "4321"]
    check_pair(pick_pin_pair(4, used), 4, set(used))
    check_pair(pick_pin_pair(4, frozenset(used)), 4, set(used))


# --- Identifiers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sub", "prefix"), [(False, "MA"), (True, "SA")])
def test_auth_id_shape(sub: bool, prefix: str) -> None:
    auth_id = new_auth_id(sub=sub)
    assert AUTH_ID_LENGTH == 20
    assert len(auth_id) == 20
    assert auth_id.startswith(prefix)
    assert set(auth_id) <= set(string.ascii_uppercase + string.digits)


def test_main_auth_id_passes_the_plivo_sdks_check() -> None:
    auth_id = new_auth_id(sub=False)
    assert is_valid_mainaccount(auth_id)
    assert not is_valid_subaccount(auth_id)
    # The check plivo.RestClient runs on its credentials (plivo-wire.md 2.3).
    assert fetch_credentials(auth_id, "token").auth_id == auth_id


def test_sub_auth_id_passes_the_plivo_sdks_check() -> None:
    auth_id = new_auth_id(sub=True)
    assert is_valid_subaccount(auth_id)
    assert not is_valid_mainaccount(auth_id)
    assert fetch_credentials(auth_id, "token").auth_id == auth_id


@pytest.mark.parametrize(
    "bad", ["MA" + "X" * 17, "MA" + "X" * 19, "XA" + "X" * 18, "ma" + "X" * 18]
)
def test_plivo_sdk_check_really_refuses(bad: str) -> None:
    # Shows the SDK check above is not a rubber stamp.
    with pytest.raises(AuthenticationError):
        fetch_credentials(bad, "token")


def test_auth_ids_are_unique() -> None:
    assert len({new_auth_id(sub=False) for _ in range(1000)}) == 1000


def test_auth_token() -> None:
    tokens = {new_auth_token() for _ in range(500)}
    assert len(tokens) == 500
    for token in tokens:
        assert len(token) == 40
        assert set(token) <= set(string.ascii_letters + string.digits)


def test_new_uuid_is_a_canonical_uuid4() -> None:
    values = {new_uuid() for _ in range(500)}
    assert len(values) == 500
    for value in values:
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert str(parsed) == value  # lower-case, hyphenated, as Plivo's session_uuid


@pytest.mark.parametrize("sub", [False, True])
def test_is_auth_id_accepts_what_veil_issues(sub: bool) -> None:
    assert all(is_auth_id(new_auth_id(sub=sub)) for _ in range(100))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "MA",
        "MA" + "X" * 17,  # 19 characters
        "MA" + "X" * 19,  # 21 characters
        "XA" + "X" * 18,
        "ma" + "X" * 18,
        "MA" + "x" * 18,  # Veil issues upper case only
        "MA" + "X" * 17 + "-",
        " MA" + "X" * 18,
        "MA" + "X" * 18 + "\n",
        "MA" + "X" * 17 + "É",
    ],
)
def test_is_auth_id_refuses(text: str) -> None:
    assert not is_auth_id(text)


@given(st.text(alphabet="MASX0189az-", min_size=18, max_size=22))
def test_is_auth_id_never_accepts_what_the_plivo_sdk_refuses(text: str) -> None:
    # An auth_id Veil accepts in a URL must be one the SDK lets its users configure.
    if is_auth_id(text):
        assert is_valid_mainaccount(text) or is_valid_subaccount(text)


def test_is_uuid() -> None:
    value = new_uuid()
    assert is_uuid(value)
    assert is_uuid(value.upper())
    assert is_uuid("c28b77d4-21e7-43bd-9447-04bfee92e651")  # seed 004's session_uuid


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc-123",  # the Python SDK's example, not a UUID
        "c28b77d421e743bd944704bfee92e651",  # no hyphens
        "{c28b77d4-21e7-43bd-9447-04bfee92e651}",
        "urn:uuid:c28b77d4-21e7-43bd-9447-04bfee92e651",
        "c28b77d4-21e7-43bd-9447-04bfee92e65",
        "g28b77d4-21e7-43bd-9447-04bfee92e651",
    ],
)
def test_is_uuid_refuses(text: str) -> None:
    assert not is_uuid(text)


# --- Session lifecycle ------------------------------------------------------------------------

CREATED = datetime(2024, 2, 1, 6, 28, 15, tzinfo=UTC)
EXPIRY = CREATED + timedelta(seconds=1800)


def session(*, status: Status = Status.ACTIVE, cooloff: int = 0) -> Session:
    return Session(
        id=1,
        uuid="c28b77d4-21e7-43bd-9447-04bfee92e651",
        account_id=1,
        main_account_id=1,
        subaccount="",
        number_id=1,
        virtual_number="+912269947011",
        first_party="+919003459051",
        second_party="+918197241073",
        status=status,
        created_time=CREATED,
        modified_time=CREATED,
        expiry_time=EXPIRY,
        duration=1800,
        settings=SessionSettings(call_time_limit=3600, virtual_number_cooloff_period=cooloff),
    )


@pytest.mark.parametrize(
    ("stored", "now", "seen"),
    [
        (Status.ACTIVE, CREATED, Status.ACTIVE),
        (Status.ACTIVE, EXPIRY - timedelta(microseconds=1), Status.ACTIVE),
        (Status.ACTIVE, EXPIRY, Status.EXPIRED),  # expired exactly at expiry_time
        (Status.ACTIVE, EXPIRY + timedelta(days=1), Status.EXPIRED),
        # A call in progress keeps the session in progress until expiry, not past it.
        (Status.IN_PROGRESS, CREATED + timedelta(seconds=60), Status.IN_PROGRESS),
        (Status.IN_PROGRESS, EXPIRY - timedelta(microseconds=1), Status.IN_PROGRESS),
        (Status.IN_PROGRESS, EXPIRY, Status.EXPIRED),
        # Expired by DELETE before its time stays expired.
        (Status.EXPIRED, CREATED, Status.EXPIRED),
        (Status.EXPIRED, EXPIRY + timedelta(seconds=1), Status.EXPIRED),
    ],
)
def test_status_at(stored: Status, now: datetime, seen: Status) -> None:
    assert session(status=stored).status_at(now) is seen


def test_status_at_compares_instants_not_wall_clocks() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    just_before = (EXPIRY - timedelta(seconds=1)).astimezone(ist)
    assert session().status_at(just_before) is Status.ACTIVE
    assert session().status_at(EXPIRY.astimezone(ist)) is Status.EXPIRED


def test_status_values_are_plivos() -> None:
    assert [s.value for s in Status] == ["active", "in-progress", "expired"]


@pytest.mark.parametrize("cooloff", [0, 1, 600, COOLOFF_PERIOD.high])
def test_busy_until(cooloff: int) -> None:
    # The number stays claimed through the cool-off, so nobody else reaches a party
    # who still dials the old number.
    assert session(cooloff=cooloff).busy_until() == EXPIRY + timedelta(seconds=cooloff)


def test_busy_until_default_is_expiry() -> None:
    assert session().busy_until() == EXPIRY


@pytest.mark.parametrize(
    ("created", "expiry", "seconds"),
    [
        (CREATED, CREATED + timedelta(seconds=1800), 1800),
        (CREATED, CREATED + timedelta(seconds=600, microseconds=999999), 600),  # floored
        # Fractions on both sides: 611.706 s is 611.
        (
            datetime(2023, 7, 12, 10, 53, 33, 400000, tzinfo=UTC),
            datetime(2023, 7, 12, 11, 3, 45, 106000, tzinfo=UTC),
            611,
        ),
        (CREATED, CREATED, 0),
    ],
)
def test_session_duration(created: datetime, expiry: datetime, seconds: int) -> None:
    assert session_duration(created, expiry) == seconds
