"""The session list query: filters, SDK aliases, paging and the default window.

Filter names are plivo-wire.md section 4.3; the aliases are what SDKs really send: Java's
and Node's single underscore (``created_time_lt``), Node's broken "Equals" names
(``created_times``) and the www docs' ``session_duration`` (sections 3.2, 3.4, 4.3).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.list_filters import (
    DEFAULT_WINDOW,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    Bound,
    Op,
    SessionFilter,
    parse_list_query,
    parse_paging,
)
from veil.domain.session import Status

NOW = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
WINDOW = Bound("created_time", Op.GTE, NOW - DEFAULT_WINDOW, NOW)

# 2024-01-03 13:35 names that minute.
MINUTE = "2024-01-03 13:35"
MINUTE_START = datetime(2024, 1, 3, 13, 35, tzinfo=UTC)
MINUTE_END = MINUTE_START + timedelta(minutes=1)


def query(**params: str) -> SessionFilter:
    return parse_list_query(params.items(), NOW)


def query_error(**params: str) -> str:
    with pytest.raises(InvalidRequest) as info:
        query(**params)
    return info.value.message


def test_plivos_literal_numbers() -> None:
    # "limit 1-20, default 20"; "the default search window is 7 days" (section 4.3).
    assert (LIMIT_DEFAULT, LIMIT_MAX) == (20, 20)
    assert timedelta(days=7) == DEFAULT_WINDOW
    assert messages.LIMIT_RANGE == "Invalid parameter. limit should be between 1 and 20."


def test_no_parameters() -> None:
    assert query() == SessionFilter(bounds=(WINDOW,), limit=20, offset=0)
    assert query().status is None  # Plivo's default status is "all"


OPS = [("", Op.EQ), ("__gt", Op.GT), ("__gte", Op.GTE), ("__lt", Op.LT), ("__lte", Op.LTE)]


@pytest.mark.parametrize(("suffix", "op"), OPS)
def test_created_time_ops(suffix: str, op: Op) -> None:
    # A created_time bound replaces the default window.
    assert query(**{"created_time" + suffix: MINUTE}).bounds == (
        Bound("created_time", op, MINUTE_START, MINUTE_END),
    )


@pytest.mark.parametrize(("suffix", "op"), OPS)
def test_expiry_time_ops(suffix: str, op: Op) -> None:
    # An expiry_time bound alone keeps the default created_time window.
    assert query(**{"expiry_time" + suffix: MINUTE}).bounds == (
        Bound("expiry_time", op, MINUTE_START, MINUTE_END),
        WINDOW,
    )


@pytest.mark.parametrize(("suffix", "op"), OPS)
@pytest.mark.parametrize("name", ["duration", "session_duration"])
def test_duration_ops(name: str, suffix: str, op: Op) -> None:
    # A duration of 50 names [50, 51), like a time names its span.
    assert query(**{name + suffix: "50"}).bounds == (Bound("duration", op, 50, 51), WINDOW)


@pytest.mark.parametrize(("suffix", "op"), OPS[1:])
@pytest.mark.parametrize("column", ["created_time", "expiry_time"])
def test_single_underscore_aliases(column: str, suffix: str, op: Op) -> None:
    # Java's SNAKE_CASE and Node's lodash send created_time_gt for created_time__gt.
    single = query(**{column + suffix[1:]: MINUTE})
    double = query(**{column + suffix: MINUTE})
    assert single.bounds == double.bounds
    assert Bound(column, op, MINUTE_START, MINUTE_END) in single.bounds


@pytest.mark.parametrize("name", ["duration_gte", "session_duration_gte"])
def test_single_underscore_duration(name: str) -> None:
    assert query(**{name: "50"}).bounds == (Bound("duration", Op.GTE, 50, 51), WINDOW)


@pytest.mark.parametrize(
    ("name", "value", "bound"),
    [
        ("created_times", MINUTE, Bound("created_time", Op.EQ, MINUTE_START, MINUTE_END)),
        ("expiry_times", MINUTE, Bound("expiry_time", Op.EQ, MINUTE_START, MINUTE_END)),
        ("durations", "50", Bound("duration", Op.EQ, 50, 51)),
    ],
)
def test_node_equals_aliases(name: str, value: str, bound: Bound) -> None:
    # Node turns createdTimeEquals into created_times (section 3.2).
    assert bound in query(**{name: value}).bounds


def test_filter_names_in_any_case() -> None:
    assert query(Created_Time__GT=MINUTE).bounds == (
        Bound("created_time", Op.GT, MINUTE_START, MINUTE_END),
    )


def test_date_filter_is_the_whole_day() -> None:
    day = datetime(2024, 1, 3, tzinfo=UTC)
    assert query(created_time="2024-01-03").bounds == (
        Bound("created_time", Op.EQ, day, day + timedelta(days=1)),
    )


def test_output_format_filter() -> None:
    # A value read back from a session object filters on that exact instant.
    moment = datetime(2023, 7, 12, 15, 52, 14, 772699, tzinfo=UTC)
    [bound] = query(created_time="2023-07-12 15:52:14.772699 +0000 UTC").bounds
    assert bound == Bound("created_time", Op.EQ, moment, moment + timedelta(microseconds=1))


def test_several_bounds_together() -> None:
    result = query(
        created_time__gte="2024-01-01",
        created_time__lt="2024-01-03 13:35",
        expiry_time__gt="2024-01-05",
        duration__lte="600",
    )
    assert set(result.bounds) == {
        Bound(
            "created_time",
            Op.GTE,
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2024, 1, 2, tzinfo=UTC),
        ),
        Bound("created_time", Op.LT, MINUTE_START, MINUTE_END),
        Bound(
            "expiry_time", Op.GT, datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC)
        ),
        Bound("duration", Op.LTE, 600, 601),
    }
    assert WINDOW not in result.bounds


@pytest.mark.parametrize(
    "params",
    [
        {"created_time__lt": MINUTE},
        {"created_time": MINUTE},
        {"created_times": MINUTE},
        {"created_time_gte": MINUTE},
        {"created_time__gte": MINUTE, "expiry_time__lt": MINUTE},
    ],
)
def test_any_created_time_bound_drops_the_default_window(params: dict[str, str]) -> None:
    assert WINDOW not in query(**params).bounds


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"expiry_time__lt": MINUTE},
        {"duration__gt": "10"},
        {"status": "active"},
        {"created_time": ""},  # empty means not given
        {"created_time__between": MINUTE},  # unknown, ignored
    ],
)
def test_default_window_without_a_created_time_bound(params: dict[str, str]) -> None:
    assert WINDOW in query(**params).bounds


def test_default_window_follows_now() -> None:
    later = NOW + timedelta(days=3)
    [bound] = parse_list_query([], later).bounds
    assert bound == Bound("created_time", Op.GTE, later - DEFAULT_WINDOW, later)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("created_time", "2024-02-30"),
        ("created_time__gt", "2024-01-03 25:00"),
        ("created_time_gt", "yesterday"),  # the message names the key as sent
        ("expiry_time__lte", "2024-01-03T13:35+05:30"),
        ("created_times", "03/01/2024"),
    ],
)
def test_bad_time_filter(name: str, value: str) -> None:
    assert query_error(**{name: value}) == messages.bad_filter_time(name)


def test_bad_time_filter_message_lower_cases_the_key() -> None:
    assert query_error(Created_Time__GT="nope") == messages.bad_filter_time("created_time__gt")


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "5s", "١٢", "+5"])
@pytest.mark.parametrize("name", ["duration", "duration__gte", "session_duration_lt", "durations"])
def test_bad_duration_filter(name: str, value: str) -> None:
    assert query_error(**{name: value}) == messages.not_integer(name)


def test_far_future_created_time_bound_is_not_a_crash() -> None:
    # "9999-12-31" is the usual "no upper bound"; it must be a bound (or a 400), never an
    # OverflowError escaping as a 500.
    try:
        bounds = query(created_time__lt="9999-12-31").bounds
    except InvalidRequest as error:
        assert error.message == messages.bad_filter_time("created_time__lt")
    else:
        [bound] = bounds
        assert (bound.op, bound.value) == (Op.LT, datetime(9999, 12, 31, tzinfo=UTC))


# --- Status ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("active", Status.ACTIVE),
        ("ACTIVE", Status.ACTIVE),
        (" expired ", Status.EXPIRED),
        ("in-progress", Status.IN_PROGRESS),  # on the newer www page
        ("all", None),
        ("All", None),
        ("", None),
    ],
)
def test_status(value: str, status: Status | None) -> None:
    assert query(status=value).status == status


@pytest.mark.parametrize("value", ["open", "in_progress", "inactive", "active,expired"])
def test_bad_status(value: str) -> None:
    assert query_error(status=value) == messages.not_one_of(
        "status", "active, in-progress, expired or all"
    )


# --- Parties, virtual number, subaccount -----------------------------------------------------


@pytest.mark.parametrize("name", ["first_party", "second_party", "virtual_number"])
@pytest.mark.parametrize(
    "value", ["+14155552671", "14155552671", "0014155552671", "1 415-555-2671"]
)
def test_phone_filters_are_normalised(name: str, value: str) -> None:
    # Stored numbers carry '+'; clients filter with Plivo's echo form, without it.
    result = query(**{name: value})
    assert getattr(result, name) == "+14155552671"
    others = {"first_party", "second_party", "virtual_number"} - {name}
    assert all(getattr(result, other) is None for other in others)


@pytest.mark.parametrize("name", ["first_party", "second_party", "virtual_number"])
@pytest.mark.parametrize("value", ["abc", "12345", "+1415555CALL"])
def test_bad_phone_filter(name: str, value: str) -> None:
    assert query_error(**{name: value}) == messages.invalid_phone(name)


@pytest.mark.parametrize("name", ["first_party", "second_party", "virtual_number"])
def test_empty_phone_filter_is_not_given(name: str) -> None:
    assert getattr(query(**{name: ""}), name) is None


def test_subaccount_filter() -> None:
    assert query(subaccount="SAZTA0ZJJHMDETOWQ4YI").subaccount == "SAZTA0ZJJHMDETOWQ4YI"
    assert query(subaccount="").subaccount is None


# --- Paging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "limit", "offset"),
    [
        ({}, LIMIT_DEFAULT, 0),
        ({"limit": "1"}, 1, 0),
        ({"limit": str(LIMIT_MAX)}, LIMIT_MAX, 0),
        ({"limit": "5", "offset": "10"}, 5, 10),
        ({"limit": "", "offset": ""}, LIMIT_DEFAULT, 0),
        ({"Limit": "07", "OFFSET": "40"}, 7, 40),
        ({"offset": "0"}, LIMIT_DEFAULT, 0),
    ],
)
def test_paging(params: dict[str, str], limit: int, offset: int) -> None:
    result = query(**params)
    assert (result.limit, result.offset) == (limit, offset)


@pytest.mark.parametrize("limit", ["0", str(LIMIT_MAX + 1), "-1", "100"])
def test_limit_out_of_range(limit: str) -> None:
    assert query_error(limit=limit) == messages.LIMIT_RANGE


@pytest.mark.parametrize("offset", ["-1", "-20"])
def test_negative_offset(offset: str) -> None:
    assert query_error(offset=offset) == messages.OFFSET_NEGATIVE


@pytest.mark.parametrize(
    ("name", "value"), [("limit", "abc"), ("limit", "1.5"), ("offset", "x"), ("offset", "-")]
)
def test_paging_not_an_integer(name: str, value: str) -> None:
    assert query_error(**{name: value}) == messages.not_integer(name)


@pytest.mark.parametrize("value", ["--1", "--20"])
@pytest.mark.parametrize("name", ["limit", "offset"])
def test_paging_doubled_sign_is_refused_not_crashed(name: str, value: str) -> None:
    # Junk must be Plivo's 400 message, not a ValueError from int() (a 500).
    assert query_error(**{name: value}) == messages.not_integer(name)


# Past any real row count or duration, yet inside a signed 64-bit database integer.
def beyond_everything(value: int) -> bool:
    return 10**18 <= value < 2**63 - 1


@pytest.mark.parametrize("digits", [19, 30, 5000])
def test_huge_offset_is_an_empty_page_not_a_crash(digits: int) -> None:
    # 5000 digits is past Python's int() limit of 4300: that must not escape as a 500,
    # nor overflow the database's integer.
    assert beyond_everything(query(offset="9" * digits).offset)


@pytest.mark.parametrize("digits", [3, 30, 5000])
def test_huge_limit_is_out_of_range(digits: int) -> None:
    assert query_error(limit="9" * digits) == messages.LIMIT_RANGE


@pytest.mark.parametrize("digits", [19, 30, 5000])
def test_huge_duration_is_a_bound_not_a_crash(digits: int) -> None:
    bound, window = query(duration__lt="9" * digits).bounds
    assert window == WINDOW
    assert (bound.column, bound.op) == ("duration", Op.LT)
    assert isinstance(bound.value, int) and isinstance(bound.end, int)
    assert beyond_everything(bound.value) and beyond_everything(bound.end)


def test_parse_paging_directly() -> None:
    # The numbers and accounts lists call it with their own query dicts.
    assert parse_paging({}) == (LIMIT_DEFAULT, 0)
    assert parse_paging({"limit": "3", "offset": "6"}) == (3, 6)
    with pytest.raises(InvalidRequest) as info:
        parse_paging({"limit": "21"})
    assert info.value.message == messages.LIMIT_RANGE


# --- echo: what next/previous links carry -----------------------------------------------------


@pytest.mark.parametrize(
    ("params", "echo"),
    [
        ({}, {}),
        # Filter names come back in their documented form, values as sent.
        ({"created_time_gt": MINUTE}, {"created_time__gt": MINUTE}),
        ({"Created_Time__LTE": MINUTE}, {"created_time__lte": MINUTE}),
        ({"created_times": MINUTE}, {"created_time": MINUTE}),
        ({"expiry_times": "2024-01-03"}, {"expiry_time": "2024-01-03"}),
        ({"durations": "50"}, {"duration": "50"}),
        ({"session_duration__gte": "50"}, {"duration__gte": "50"}),
        ({"duration_lt": "50"}, {"duration__lt": "50"}),
        ({"first_party": "14155552671"}, {"first_party": "14155552671"}),
        ({"virtual_number": "+14155552671"}, {"virtual_number": "+14155552671"}),
        ({"subaccount": "SA1"}, {"subaccount": "SA1"}),
        ({"status": "ACTIVE"}, {"status": "active"}),
        ({"status": "all"}, {"status": "all"}),
        # Paging, unknown and empty parameters are not echoed: links set their own paging.
        ({"limit": "5", "offset": "10"}, {}),
        ({"foo": "bar", "created_time": "", "first_party": ""}, {}),
    ],
)
def test_echo(params: dict[str, str], echo: dict[str, str]) -> None:
    assert query(**params).echo == echo


def test_default_window_is_not_echoed() -> None:
    # A next link must not pin the window to this request's "now".
    assert "created_time__gte" not in query().echo


def test_echo_rebuilds_the_same_filter() -> None:
    # Following a next link must select the same sessions.
    params = {
        "created_time_gt": MINUTE,
        "Expiry_Time__LT": "2024-01-05",
        "durations": "60",
        "first_party": "14155552671",
        "second_party": "0014155552672",
        "virtual_number": "+919003459051",
        "status": "In-Progress",
        "subaccount": "SA1",
        "limit": "5",
        "offset": "10",
    }
    first = query(**params)
    again = parse_list_query(first.echo.items(), NOW)
    assert again.bounds == first.bounds
    assert (again.first_party, again.second_party, again.virtual_number) == (
        first.first_party,
        first.second_party,
        first.virtual_number,
    )
    assert (again.status, again.subaccount) == (first.status, first.subaccount)


def test_keys_are_stripped_and_values_trimmed() -> None:
    result = parse_list_query([(" status ", " expired "), ("limit ", " 3 ")], NOW)
    assert (result.status, result.limit) == (Status.EXPIRED, 3)
