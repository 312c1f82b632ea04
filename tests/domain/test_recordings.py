"""The Recording resource's pure rules (veil/domain/recordings.py): number and time
formats of the object, and the list query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.list_filters import DEFAULT_WINDOW, Bound, Op
from veil.domain.recordings import (
    epoch_ms,
    format_add_time,
    media_uri,
    milliseconds,
    parse_recording_query,
    resource_uri,
    rounded_duration,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_formats() -> None:
    assert milliseconds(15.04 * 1000) == "15040.00000"
    assert milliseconds(epoch_ms(datetime(2014, 8, 5, 10, 39, 23, 907000, tzinfo=UTC))) == (
        "1407235163907.00000"
    )
    assert format_add_time(datetime(2022, 4, 12, 10, 38, 53, 523657, tzinfo=UTC)) == (
        "2022-04-12 10:38:53.523657+00:00"
    )
    assert format_add_time(datetime(2022, 4, 12, 10, 38, 53, tzinfo=UTC)) == (
        "2022-04-12 10:38:53.000000+00:00"
    )
    assert resource_uri("MA" + "X" * 18, "r") == f"/v1/Account/MA{'X' * 18}/Recording/r/"
    assert media_uri("MA" + "X" * 18, "r", "wav") == f"/v1/Account/MA{'X' * 18}/Recording/r.wav"


@pytest.mark.parametrize(
    ("seconds", "rounded"),
    [(0, 60), (0.5, 60), (59.9, 60), (60, 60), (60.01, 120), (345.1, 360)],
)
def test_rounded_duration(seconds: float, rounded: int) -> None:
    assert rounded_duration(seconds) == rounded


def test_default_query() -> None:
    query = parse_recording_query([], NOW)
    assert (query.limit, query.offset) == (20, 0)
    assert query.bounds == (Bound("add_time", Op.GTE, NOW - DEFAULT_WINDOW, NOW),)
    assert query.echo == {}
    assert (query.call_uuid, query.from_number, query.to_number, query.subaccount) == (
        None,
        None,
        None,
        None,
    )


def test_filters_are_read_and_echoed() -> None:
    query = parse_recording_query(
        [
            ("call_uuid", "abc"),
            ("from_number", "14155550100"),
            ("to_number", "+1 646 555 0100"),
            ("Recording_Type", "CALL"),
            ("subaccount", "SA" + "Y" * 18),
            ("add_time__gt", "2024-02-01 10:00"),
            ("limit", "5"),
            ("offset", "10"),
            ("unknown", "ignored"),
        ],
        NOW,
    )
    assert query.call_uuid == "abc"
    assert (query.from_number, query.to_number) == ("+14155550100", "+16465550100")
    assert query.recording_type == "call"
    assert query.subaccount == "SA" + "Y" * 18
    start = datetime(2024, 2, 1, 10, 0, tzinfo=UTC)
    assert query.bounds == (Bound("add_time", Op.GT, start, start + timedelta(minutes=1)),)
    assert (query.limit, query.offset) == (5, 10)
    assert query.echo == {
        "call_uuid": "abc",
        "from_number": "14155550100",
        "to_number": "+1 646 555 0100",
        "recording_type": "CALL",
        "subaccount": "SA" + "Y" * 18,
        "add_time__gt": "2024-02-01 10:00",
    }


@pytest.mark.parametrize(
    ("key", "value", "op", "start", "length"),
    [
        ("add_time", "2024-02-01", Op.EQ, datetime(2024, 2, 1, tzinfo=UTC), timedelta(days=1)),
        (
            "add_time__lte",
            "2024-02-01 10:00:05.25",
            Op.LTE,
            datetime(2024, 2, 1, 10, 0, 5, 250000, tzinfo=UTC),
            timedelta(microseconds=1),
        ),
        # What the SDK sends for a datetime: str(datetime), with its offset.
        (
            "add_time__gte",
            "2024-02-01 10:00:05+00:00",
            Op.GTE,
            datetime(2024, 2, 1, 10, 0, 5, tzinfo=UTC),
            timedelta(seconds=1),
        ),
        (
            "add_time_lt",
            "2024-02-01 15:30:00+05:30",
            Op.LT,
            datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
            timedelta(seconds=1),
        ),
        (
            "add_time__gt",
            "2024-02-01 05:00-05:00",
            Op.GT,
            datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
            timedelta(minutes=1),
        ),
    ],
)
def test_add_time_forms(key: str, value: str, op: Op, start: datetime, length: timedelta) -> None:
    [bound] = parse_recording_query([(key, value)], NOW).bounds
    assert bound == Bound("add_time", op, start, start + length)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("add_time__gt", "yesterday")], messages.bad_filter_time("add_time__gt")),
        ([("add_time", "2024-02-30")], messages.bad_filter_time("add_time")),
        ([("from_number", "anonymous")], messages.invalid_phone("from_number")),
        ([("to_number", "12")], messages.invalid_phone("to_number")),
        ([("limit", "21")], messages.LIMIT_RANGE),
        ([("limit", "0")], messages.LIMIT_RANGE),
        ([("offset", "-1")], messages.OFFSET_NEGATIVE),
        ([("limit", "ten")], messages.not_integer("limit")),
    ],
)
def test_invalid_queries(params: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_recording_query(params, NOW)
    assert info.value.message == message
