"""The pool report's pure rules: status thresholds, Plivo's rule, the replay's times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veil.domain.pool_replay import TraceSession
from veil.domain.pool_report import (
    PoolReport,
    PoolStatus,
    holds_number_after,
    plivo_rule,
    pool_status,
    trace_session,
)


@pytest.mark.parametrize(
    ("numbers", "needed", "status"),
    [
        (0, 1, PoolStatus.SHORT),
        (2, 3, PoolStatus.SHORT),
        (99, 100, PoolStatus.SHORT),
        (3, 3, PoolStatus.TIGHT),  # enough, nothing spare
        (4, 3, PoolStatus.OK),  # one spare is the margin below ten needed
        (10, 10, PoolStatus.TIGHT),
        (11, 10, PoolStatus.OK),  # 10% of 10 is one number
        (16, 15, PoolStatus.TIGHT),  # 1 < 1.5
        (17, 15, PoolStatus.OK),
        (21, 20, PoolStatus.TIGHT),  # 1 < 2
        (22, 20, PoolStatus.OK),  # exactly 10%: not below it
        (109, 100, PoolStatus.TIGHT),
        (110, 100, PoolStatus.OK),
        (1, 0, PoolStatus.OK),  # numbers and no traffic
    ],
)
def test_pool_status_boundaries(numbers: int, needed: int, status: PoolStatus) -> None:
    assert pool_status(numbers, needed) is status


@pytest.mark.parametrize(("n", "rule"), [(0, 0), (1, 1), (2, 3), (3, 5), (10, 19)])
def test_plivo_rule(n: int, rule: int) -> None:
    assert plivo_rule(n) == rule


def test_report_derives_rule_headroom_and_status() -> None:
    report = PoolReport("", "US", 5, 3, 3, 3, 3)
    assert (report.plivo_rule_7d, report.headroom, report.status) == (5, 2, PoolStatus.OK)
    short = PoolReport("SA" + "X" * 18, "DE", 1, 1, 1, 2, 2)
    assert (short.plivo_rule_7d, short.headroom, short.status) == (3, -1, PoolStatus.SHORT)


WINDOW_START = datetime(2024, 1, 8, tzinfo=UTC)


def test_trace_keeps_the_real_start_of_a_session_from_before_the_window() -> None:
    trace = trace_session(
        created_time=WINDOW_START - timedelta(hours=2),
        expiry_time=WINDOW_START + timedelta(hours=1),
        cooloff_seconds=600,
        parties=("+14155550100", ""),
        window_start=WINDOW_START,
    )
    assert trace == TraceSession(-7200.0, 10800.0, ("+14155550100",), 600.0)
    assert trace.busy_until == 3600 + 600


def test_cooloff_keeps_a_session_in_the_window() -> None:
    expired = WINDOW_START - timedelta(minutes=30)
    assert holds_number_after(expired, 3600, WINDOW_START)
    assert not holds_number_after(expired, 1800, WINDOW_START)  # free at the start: out
    assert not holds_number_after(expired, 0, WINDOW_START)
