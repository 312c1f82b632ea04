"""Webhook delivery rules: classification, backoff with full jitter, Retry-After, maximum
age, URL and address refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.domain.delivery import (
    RETRY_AFTER_CAP,
    Decision,
    Outcome,
    RetryPolicy,
    Step,
    Verdict,
    address_problem,
    backoff_delay,
    classify,
    decide,
    is_too_old,
    parse_retry_after,
    url_problem,
)

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=1.0, cap=600.0, max_age=86_400.0)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (301, Verdict.PERMANENT),
        (302, Verdict.PERMANENT),
        (307, Verdict.PERMANENT),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (410, Verdict.PERMANENT),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (599, Verdict.RETRY),
        (600, Verdict.PERMANENT),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_errors_without_a_response_are_retried_and_refusals_are_not() -> None:
    assert Outcome(error="ConnectError: refused").verdict is Verdict.RETRY
    assert Outcome(error="timeout after 5 s").verdict is Verdict.RETRY
    assert Outcome(error="refused: scheme 'ftp'", refused=True).verdict is Verdict.PERMANENT


def test_describe() -> None:
    assert Outcome(status_code=500).describe() == "HTTP 500"
    assert Outcome(error="timeout after 5 s").describe() == "timeout after 5 s"


@pytest.mark.parametrize(
    ("attempt", "bound"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (11, 600.0), (40, 600.0), (10_000, 600.0)],
)
def test_backoff_bound_doubles_up_to_the_cap(attempt: int, bound: float) -> None:
    assert backoff_delay(attempt, POLICY, 0.0) == 0.0
    assert backoff_delay(attempt, POLICY, 0.5) == bound / 2
    assert backoff_delay(attempt, POLICY, 0.999999) == pytest.approx(bound, rel=1e-5)


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_backoff_is_full_jitter_within_the_bound(attempt: int, rand: float) -> None:
    delay = backoff_delay(attempt, POLICY, rand)
    assert 0.0 <= delay <= min(POLICY.cap, POLICY.base * 2.0 ** (attempt - 1))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("999999", RETRY_AFTER_CAP),
        ("Fri, 01 Mar 2024 12:00:30 GMT", 30.0),
        ("Fri, 01 Mar 2024 11:59:00 GMT", 0.0),  # in the past: at once
        ("Friday, 01-Mar-24 12:01:00 GMT", 60.0),  # RFC 850, obsolete but allowed
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_max_age() -> None:
    created = NOW - timedelta(seconds=POLICY.max_age)
    assert is_too_old(created, NOW, POLICY)
    assert not is_too_old(created + timedelta(seconds=1), NOW, POLICY)


def _decide(outcome: Outcome, *, attempt: int = 1, age: float = 0.0, rand: float = 0.5) -> Decision:
    return decide(
        outcome,
        attempt=attempt,
        created_time=NOW - timedelta(seconds=age),
        now=NOW,
        policy=POLICY,
        rand=rand,
    )


def test_decide_delivered_and_permanent() -> None:
    assert _decide(Outcome(status_code=200)) == Decision(Step.DELIVERED)
    assert _decide(Outcome(status_code=404)) == Decision(Step.DEAD)
    assert _decide(Outcome(status_code=302, error="redirect")) == Decision(Step.DEAD)
    # Delivered even past the maximum age: the receiver has it.
    assert _decide(Outcome(status_code=200), age=10**6) == Decision(Step.DELIVERED)


def test_decide_retry_uses_backoff_or_retry_after() -> None:
    assert _decide(Outcome(status_code=500), attempt=3, rand=0.5) == Decision(
        Step.RETRY, NOW + timedelta(seconds=2)
    )
    assert _decide(Outcome(status_code=429, retry_after=7.0), attempt=3) == Decision(
        Step.RETRY, NOW + timedelta(seconds=7)
    )
    assert _decide(Outcome(error="timeout after 5 s"), rand=0.0) == Decision(Step.RETRY, NOW)


def test_decide_never_retries_past_the_maximum_age() -> None:
    # One minute left: a long Retry-After is cut to the deadline...
    left = POLICY.max_age - 60
    assert _decide(Outcome(status_code=429, retry_after=3600.0), age=left) == Decision(
        Step.RETRY, NOW + timedelta(seconds=60)
    )
    # ...and a failure at the deadline is final.
    assert _decide(Outcome(status_code=500), age=POLICY.max_age) == Decision(Step.DEAD)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://example.com/cb", None),
        ("http://127.0.0.1:8080/cb?x=1", None),
        ("ftp://example.com/cb", "refused: scheme 'ftp' is not http or https"),
        ("file:///etc/passwd", "refused: scheme 'file' is not http or https"),
        ("example.com/cb", "refused: scheme '(none)' is not http or https"),
        ("http:///cb", "refused: the URL has no host"),
        ("http://[::1/cb", "refused: not a valid URL"),
    ],
)
def test_url_problem(url: str, problem: str | None) -> None:
    assert url_problem(url) == problem


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("::1", "refused: ::1 is a loopback address"),
        ("10.1.2.3", "refused: 10.1.2.3 is a private address"),
        ("192.168.0.1", "refused: 192.168.0.1 is a private address"),
        ("172.16.5.4", "refused: 172.16.5.4 is a private address"),
        ("169.254.169.254", "refused: 169.254.169.254 is a link-local address"),
        ("fe80::1%eth0", "refused: fe80::1%eth0 is a link-local address"),
        ("fd00::1", "refused: fd00::1 is a private address"),
        ("0.0.0.0", "refused: 0.0.0.0 is an unspecified address"),
        ("::ffff:127.0.0.1", "refused: ::ffff:127.0.0.1 is a loopback address"),
        ("224.0.0.1", "refused: 224.0.0.1 is a multicast address"),
    ],
)
def test_address_problem(address: str, problem: str | None) -> None:
    assert address_problem(address) == problem
