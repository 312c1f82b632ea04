"""Webhook delivery rules, without I/O: what an attempt's outcome means and when to try
again.

One attempt ends in an ``Outcome`` (a status code, or an error before any response);
``decide`` turns it into the row's next step:

- a 2xx: delivered;
- a network error, a timeout, a 5xx or a 429: retried after a backoff with full jitter
  (or after the receiver's ``Retry-After``, when it gives one), until the event is
  older than the maximum age;
- anything else (another 4xx, a 3xx, since redirects are not followed, a URL Veil will
  not call): permanent, no retry.

Full jitter (a uniform draw between zero and the exponential bound) spreads the
retries of many events that failed together, so a receiver coming back up is not hit
by all of them at once.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

RETRY_BASE = 1.0  # seconds: the bound of the first retry's delay
RETRY_CAP = 600.0  # seconds: the bound never grows beyond this
MAX_AGE = 86_400.0  # seconds after an event was written that it is still retried
RETRY_AFTER_CAP = 3_600.0  # seconds: a longer Retry-After is taken as this


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt (or being sent)
    DELIVERED = "delivered"  # a 2xx was received
    DEAD = "dead"  # failed permanently or for longer than the maximum age


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait between attempts, and for how long to keep trying."""

    base: float = RETRY_BASE  # seconds
    cap: float = RETRY_CAP  # seconds
    max_age: float = MAX_AGE  # seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result: ``status_code`` when a response came, else ``error``."""

    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from the response's Retry-After
    refused: bool = False  # Veil refused to call the URL (scheme, private target)

    @property
    def verdict(self) -> Verdict:
        if self.refused:
            return Verdict.PERMANENT
        if self.status_code is None:
            return Verdict.RETRY  # connection refused, reset, timeout, DNS failure
        return classify(self.status_code)

    def describe(self) -> str:
        """The row's ``last_error``."""
        if self.error:
            return self.error
        return f"HTTP {self.status_code}"


def classify(status_code: int) -> Verdict:
    """What a response status means for the event."""
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code == 429 or 500 <= status_code < 600:
        return Verdict.RETRY
    return Verdict.PERMANENT  # other 4xx; 3xx (not followed); anything unknown


def backoff_delay(attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): full jitter,
    ``rand`` (in [0, 1)) times ``min(cap, base * 2 ** (attempt - 1))``."""
    bound = min(policy.cap, policy.base * 2.0 ** min(max(attempt - 1, 0), 62))
    return rand * bound


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (RFC 9110 section 10.2.3), delay-seconds or an HTTP date,
    as seconds from ``now`` (never negative, at most ``RETRY_AFTER_CAP``); None when
    absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" in the date: UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def is_too_old(created_time: datetime, now: datetime, policy: RetryPolicy) -> bool:
    """Whether an event written at ``created_time`` is past its maximum age."""
    return now >= created_time + timedelta(seconds=policy.max_age)


class Step(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    at: datetime | None = None  # the next attempt's time, for RETRY


def decide(
    outcome: Outcome,
    *,
    attempt: int,
    created_time: datetime,
    now: datetime,
    policy: RetryPolicy,
    rand: float,
) -> Decision:
    """The row's next step after attempt number ``attempt`` ended in ``outcome``.

    A retry is never scheduled past the maximum age: the last one happens at the deadline,
    and a failure at or after it is final."""
    verdict = outcome.verdict
    if verdict is Verdict.DELIVERED:
        return Decision(Step.DELIVERED)
    if verdict is Verdict.PERMANENT or is_too_old(created_time, now, policy):
        return Decision(Step.DEAD)
    if outcome.retry_after is not None:
        delay = outcome.retry_after
    else:
        delay = backoff_delay(attempt, policy, rand)
    deadline = created_time + timedelta(seconds=policy.max_age)
    return Decision(Step.RETRY, min(now + timedelta(seconds=delay), deadline))


def url_problem(url: str) -> str | None:
    """Why Veil will not call ``url`` at all (only http and https, with a host), or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "refused: not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"refused: scheme {parts.scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "refused: the URL has no host"
    return None


def address_problem(address: str) -> str | None:
    """Why an operator who refuses private targets would refuse ``address`` (an IP
    address as resolved), or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("an unspecified", ip.is_unspecified),
        ("a multicast", ip.is_multicast),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
    ):
        if flag:
            return f"refused: {address} is {kind} address"
    return None
