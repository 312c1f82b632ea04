"""Session list queries as the SDKs other than Python's send them (plivo-wire.md 4.3).

Besides the documented ``created_time__gt`` forms: Java's SNAKE_CASE and Node's lodash
give one underscore (``created_time_gt``, ``duration_gte``), Node's "Equals" filters
arrive as ``created_times``/``durations`` (section 3.2), the www docs say
``session_duration``, and requests and Go encode spaces as ``+`` and ``:`` as ``%3A``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.api.test_wire_compat import MASKING, Api, plivo_time
from tests.servers import Server
from tests.utils import Admin
from veil.domain.accounts import Account


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


@pytest.fixture
def short_and_long(api: Api, admin: Admin, account: Account) -> tuple[dict[str, Any], ...]:
    """Two sessions: 600 s and 7200 s long."""
    admin.add_numbers(account)
    short = api.create({"session_expiry": 600})["session"]
    long = api.create({"session_expiry": 7200})["session"]
    return short, long


def _uuids(page: dict[str, Any]) -> set[str]:
    return {o["session_uuid"] for o in page["objects"]}


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


DURATION_ALIASES = [
    "duration__gte",  # documented
    "duration_gte",  # Java SNAKE_CASE, Node with a snake key
    "session_duration__gte",  # the www docs' name
    "session_duration_gte",
]


@pytest.mark.parametrize("key", DURATION_ALIASES)
def test_duration_filter_aliases(api: Api, short_and_long: tuple[dict[str, Any], ...], key: str):
    short, long = short_and_long
    assert _uuids(api.list(f"{key}=7200")) == {long["session_uuid"]}
    assert _uuids(api.list(f"{key}=600")) == {short["session_uuid"], long["session_uuid"]}


def test_duration_equals_node_spelling(api: Api, short_and_long: tuple[dict[str, Any], ...]):
    # Node's durationEquals becomes "durations" (section 3.2).
    short, long = short_and_long
    assert _uuids(api.list("durations=600")) == {short["session_uuid"]}
    assert _uuids(api.list("duration=7200")) == {long["session_uuid"]}


@pytest.mark.parametrize("key", ["created_time__gt", "created_time_gt"])
def test_created_time_single_underscore(
    api: Api, short_and_long: tuple[dict[str, Any], ...], key: str
) -> None:
    short, long = short_and_long
    created = plivo_time(short["created_time"])
    before, after = created - timedelta(days=1), created + timedelta(days=1)
    assert _uuids(api.list(f"{key}={_minute(before)}")) == {
        short["session_uuid"],
        long["session_uuid"],
    }
    assert _uuids(api.list(f"{key}={_minute(after)}")) == set()


def test_created_times_node_equals(api: Api, short_and_long: tuple[dict[str, Any], ...]) -> None:
    # Node's createdTimeEquals becomes "created_times" (section 3.2): a day is its span.
    short, _ = short_and_long
    created = plivo_time(short["created_time"])
    day = created.strftime("%Y-%m-%d")
    yesterday = (created - timedelta(days=1)).strftime("%Y-%m-%d")
    assert short["session_uuid"] in _uuids(api.list(f"created_times={day}"))
    assert _uuids(api.list(f"created_times={yesterday}")) == set()


def test_query_with_plus_spaces_and_encoded_colon(
    api: Api, short_and_long: tuple[dict[str, Any], ...]
) -> None:
    """requests and Go's url.Values encode spaces as ``+`` and ``:`` as ``%3A`` (2.2, 3.1)."""
    short, long = short_and_long
    created = plivo_time(short["created_time"])

    def encoded(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d+%H%%3A%M")

    before = encoded(created - timedelta(days=1))
    after = encoded(created + timedelta(days=1))
    path = api.path(f"{MASKING}/")
    response = api.raw("GET", f"{path}?created_time__gte={before}&duration__gte=7200")
    assert response.status_code == 200, response.text
    assert _uuids(response.json()["response"]) == {long["session_uuid"]}
    response = api.raw("GET", f"{path}?created_time__gte={after}")
    assert response.status_code == 200, response.text
    assert _uuids(response.json()["response"]) == set()
