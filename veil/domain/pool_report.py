"""The operator's pool report: is each pool the right size for its traffic?

A pool is the session numbers of one main account with the same subaccount scope and
country (veil.domain.allocator). The report sets the pool's size against what the last
``REPORT_WINDOW`` of its sessions needed, replayed with Veil's own allocation policy
(veil.domain.pool_replay), and against Plivo's rule of thumb, 2N - 1 numbers for a
party that holds N sessions at once: the size any allocator is sure to get by with,
and more than Veil's policy usually needs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from veil.domain.pool_replay import TraceSession
from veil.domain.session import holds_number_until

# A week covers the weekly cycle of ride-hailing and delivery traffic, peak days included.
REPORT_WINDOW = timedelta(days=7)

# "tight" below this share of the need: a tenth more traffic than last week's peak, or a
# number lost to the carrier, should not yet refuse sessions.
TIGHT_SHARE = 0.1
TIGHT_MIN = 1  # a small pool still wants one spare number; a fraction of one spares nothing


class PoolStatus(enum.StrEnum):
    OK = "ok"
    TIGHT = "tight"  # enough for last week, with less than the margin to spare
    SHORT = "short"  # last week's traffic would have met "Number pool exhausted"


def pool_status(numbers: int, needed: int) -> PoolStatus:
    """Short below the need; tight when the spare numbers are fewer than
    max(``TIGHT_MIN``, ``TIGHT_SHARE`` of the need); else ok."""
    if numbers < needed:
        return PoolStatus.SHORT
    if numbers - needed < max(TIGHT_MIN, TIGHT_SHARE * needed):
        return PoolStatus.TIGHT
    return PoolStatus.OK


def plivo_rule(busiest_party: int) -> int:
    """Plivo's advice, 2N - 1 numbers (none for no traffic)."""
    return 2 * busiest_party - 1 if busiest_party > 0 else 0


@dataclass(frozen=True, slots=True)
class PoolReport:
    """One pool now and over the last ``REPORT_WINDOW``."""

    subaccount: str  # the scope's auth_id, "" for the main account's own numbers
    country: str
    numbers: int  # in the pool now
    in_use: int  # of those, holding at least one live claim
    busiest_party_now: int  # N now: the most live claims one party holds in the pool
    busiest_party_7d: int  # N over the window
    needed_7d: int  # the smallest pool that serves the window's sessions

    @property
    def plivo_rule_7d(self) -> int:
        return plivo_rule(self.busiest_party_7d)

    @property
    def headroom(self) -> int:
        return self.numbers - self.needed_7d

    @property
    def status(self) -> PoolStatus:
        return pool_status(self.numbers, self.needed_7d)


def holds_number_after(expiry_time: datetime, cooloff_seconds: int, window_start: datetime) -> bool:
    """Whether a session still held its number at ``window_start``, or later."""
    return holds_number_until(expiry_time, cooloff_seconds) > window_start


def trace_session(
    *,
    created_time: datetime,
    expiry_time: datetime,
    cooloff_seconds: int,
    parties: Sequence[str],
    window_start: datetime,
) -> TraceSession:
    """A stored session for the replay, in seconds from ``window_start``.

    A session from before the window keeps its real (negative) start rather than the
    window's: the replay then offers those sessions in the order they really came, and
    each still holds its number from the window's start on. Every one of them is live at
    the window's start, so none raises N or the need above what that instant demands.
    """
    start = (created_time - window_start).total_seconds()
    return TraceSession(
        start=start,
        expiry=(expiry_time - created_time).total_seconds(),
        parties=tuple(p for p in parties if p),
        cooloff=float(cooloff_seconds),
    )
