"""Plivo's timestamp formats.

Plivo's masking service prints times with Go's ``time.Time.String()``:
``2023-07-05 10:25:40.877364 +0000 UTC``, the fraction trimmed of trailing zeros and
left out when it is zero. List filters take ``YYYY-MM-DD HH:MM[:ss[.uuuuuu]]``; Veil
also accepts a bare date and the output format itself, so a client can filter on a
value it read back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def format_time(moment: datetime) -> str:
    """``2024-02-01 06:28:15 +0000 UTC`` or ``2024-02-01 06:28:15.5 +0000 UTC``."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def format_event_time(moment: datetime) -> str:
    """The ``EventTimestamp`` of callbacks: ``2024-02-01 06:28:15`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


_FILTER_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[ T](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?)?"
    r"(?:\s*(?:\+0000|Z)(?:\s*UTC)?)?"
)


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """A filter value read as the span it names: ``2024-01-03 13:35`` is that minute."""

    start: datetime
    end: datetime  # exclusive


def parse_filter_time(text: str) -> TimeSpan | None:
    """Parse a list-filter time (UTC); None if it is not one of the accepted forms."""
    match = _FILTER_TIME.fullmatch(text.strip())
    if not match:
        return None
    try:
        day = datetime.strptime(match["date"], "%Y-%m-%d").replace(tzinfo=UTC)
        if match["hour"] is None:
            return _span(day, timedelta(days=1))
        start = day.replace(hour=int(match["hour"]), minute=int(match["minute"]))
        if match["second"] is None:
            return _span(start, timedelta(minutes=1))
        start = start.replace(second=int(match["second"]))
        if match["fraction"] is None:
            return _span(start, timedelta(seconds=1))
        fraction = match["fraction"][:6].ljust(6, "0")
        start = start.replace(microsecond=int(fraction))
        return _span(start, timedelta(microseconds=1))
    except ValueError:  # 2024-02-30, 25:00 and the like
        return None


def _span(start: datetime, length: timedelta) -> TimeSpan:
    try:
        return TimeSpan(start, start + length)
    except OverflowError:  # the last span of year 9999 ends at the end of time
        return TimeSpan(start, datetime.max.replace(tzinfo=UTC))
