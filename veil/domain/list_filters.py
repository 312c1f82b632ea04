"""The session list query: filters, their aliases, paging and the default time window.

Filter names are those of plivo-wire.md section 4.3. Besides the documented
double-underscore forms, Veil accepts what other SDKs really send: Java's and Node's
single underscore (``created_time_gt``), Node's broken "Equals" names
(``created_times``) and the www docs' ``session_duration``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.phone import parse_e164
from veil.domain.session import Status
from veil.domain.timefmt import parse_filter_time
from veil.domain.values import to_int

LIMIT_DEFAULT = 20
LIMIT_MAX = 20
# Plivo: "If search boundaries are not provided, the default search window is 7 days."
DEFAULT_WINDOW = timedelta(days=7)


class Op(enum.Enum):
    EQ = "eq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


@dataclass(frozen=True, slots=True)
class Bound:
    """``column op value``; for a time, ``value`` is an instant and ``end`` the end of the
    span the client named (``2024-01-03`` is the whole day)."""

    column: str  # created_time, expiry_time or duration
    op: Op
    value: datetime | int
    end: datetime | int


@dataclass(frozen=True, slots=True)
class SessionFilter:
    first_party: str | None = None
    second_party: str | None = None
    virtual_number: str | None = None
    status: Status | None = None  # None: all
    subaccount: str | None = None
    bounds: tuple[Bound, ...] = ()
    limit: int = LIMIT_DEFAULT
    offset: int = 0
    # The query parameters as understood, to rebuild next/previous links.
    echo: dict[str, str] = field(default_factory=dict)


_COLUMNS = {
    "created_time": "created_time",
    "expiry_time": "expiry_time",
    "duration": "duration",
    "session_duration": "duration",
}
_EQUALS_ALIASES = {
    "created_times": "created_time",
    "expiry_times": "expiry_time",
    "durations": "duration",
}
_STATUS_VALUES = "active, in-progress, expired or all"


def _split_filter(key: str) -> tuple[str, Op] | None:
    if key in _EQUALS_ALIASES:
        return _EQUALS_ALIASES[key], Op.EQ
    if key in _COLUMNS:
        return _COLUMNS[key], Op.EQ
    for sep in ("__", "_"):
        base, _, suffix = key.rpartition(sep)
        if base in _COLUMNS and suffix in ("gt", "gte", "lt", "lte"):
            return _COLUMNS[base], Op(suffix)
    return None


def parse_list_query(items: Iterable[tuple[str, str]], now: datetime) -> SessionFilter:
    """Turn query parameters into a filter; unknown parameters are ignored."""
    values: dict[str, str] = {}
    for key, value in items:
        values[key.strip().lower()] = value.strip()

    parties: dict[str, str | None] = {}
    for name in ("first_party", "second_party", "virtual_number"):
        raw = values.get(name)
        if raw:
            number = parse_e164(raw)
            if number is None:
                raise InvalidRequest(messages.invalid_phone(name))
            parties[name] = number.value
        else:
            parties[name] = None

    status: Status | None = None
    raw_status = values.get("status", "").lower()
    if raw_status and raw_status != "all":
        try:
            status = Status(raw_status)
        except ValueError:
            raise InvalidRequest(messages.not_one_of("status", _STATUS_VALUES)) from None

    bounds: list[Bound] = []
    echo: dict[str, str] = {}
    for key, raw in values.items():
        split = _split_filter(key)
        if split is None or raw == "":
            continue
        column, op = split
        if column == "duration":
            seconds = to_int(raw)
            if seconds is None or raw.strip().startswith(("-", "+")):
                raise InvalidRequest(messages.not_integer(key))
            bounds.append(Bound(column, op, seconds, seconds + 1))
        else:
            span = parse_filter_time(raw)
            if span is None:
                raise InvalidRequest(messages.bad_filter_time(key))
            bounds.append(Bound(column, op, span.start, span.end))
        suffix = "" if op is Op.EQ else "__" + op.value
        echo[column + suffix] = raw
    if not any(b.column == "created_time" for b in bounds):
        bounds.append(Bound("created_time", Op.GTE, now - DEFAULT_WINDOW, now))

    limit, offset = parse_paging(values)

    for name in ("first_party", "second_party", "virtual_number", "subaccount"):
        if values.get(name):
            echo[name] = values[name]
    if raw_status:
        echo["status"] = raw_status
    return SessionFilter(
        first_party=parties["first_party"],
        second_party=parties["second_party"],
        virtual_number=parties["virtual_number"],
        status=status,
        subaccount=values.get("subaccount") or None,
        bounds=tuple(bounds),
        limit=limit,
        offset=offset,
        echo=echo,
    )


def parse_paging(values: dict[str, str]) -> tuple[int, int]:
    """``limit`` (1-20, default 20) and ``offset`` (>= 0) of any Plivo list."""
    limit = _paging(values.get("limit"), "limit", LIMIT_DEFAULT)
    if not 1 <= limit <= LIMIT_MAX:
        raise InvalidRequest(messages.LIMIT_RANGE)
    offset = _paging(values.get("offset"), "offset", 0)
    if offset < 0:
        raise InvalidRequest(messages.OFFSET_NEGATIVE)
    return limit, offset


def _paging(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    value = to_int(raw)
    if value is None:
        raise InvalidRequest(messages.not_integer(name))
    return value
