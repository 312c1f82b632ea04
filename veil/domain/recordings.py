"""Call recordings as Plivo's Recording resource shows them: the stored record, its URLs,
the number formats of its JSON object, and the list query.

The resource is Plivo's Voice API (``/v1/Account/{auth_id}/Recording/``), not the masking
service: its times are Python's (``2022-04-12 10:38:53.523657+00:00``), its durations
strings of milliseconds (``"15040.00000"``), and its list filters those of Plivo's
"List all recordings" page: ``call_uuid``, ``from_number``, ``to_number``,
``subaccount`` and ``add_time`` with ``__gt``/``__gte``/``__lt``/``__lte``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.list_filters import DEFAULT_WINDOW, Bound, Op, parse_paging
from veil.domain.phone import normalize_number
from veil.domain.timefmt import parse_filter_time
from veil.domain.values import RECORD_FILE_FORMATS

RECORDING_TYPE_CALL = "call"  # every recording Veil makes is of one call
# The Content-Type each file format is served with.
MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}
assert set(MEDIA_TYPES) == set(RECORD_FILE_FORMATS)
# Plivo: "rounds the recording duration to the nearest 60-second interval. Recordings
# shorter than 60 seconds are rounded up to 60 seconds."; Veil rounds up.
ROUNDING = 60  # seconds


@dataclass(frozen=True, slots=True)
class Recording:
    """One stored recording of one call through a session."""

    id: int
    recording_id: str  # a UUID, Plivo's ``recording_id``
    account_id: int  # the session's owner: a main account or a subaccount
    main_account_id: int
    session_id: int
    interaction_uuid: str
    call_uuid: str  # the caller's leg
    recording_type: str
    file_format: str  # "mp3" or "wav"
    path: str  # the file, absolute
    duration: float  # seconds
    start_time: datetime
    end_time: datetime
    from_number: str  # E.164 with "+"
    to_number: str
    add_time: datetime


def resource_uri(auth_id: str, recording_id: str) -> str:
    """``/v1/Account/{auth_id}/Recording/{recording_id}/``, the object's address."""
    return f"/v1/Account/{auth_id}/Recording/{recording_id}/"


def media_uri(auth_id: str, recording_id: str, file_format: str) -> str:
    """``/v1/Account/{auth_id}/Recording/{recording_id}.mp3``, the file's address."""
    return f"/v1/Account/{auth_id}/Recording/{recording_id}.{file_format}"


def milliseconds(value: float) -> str:
    """Plivo's millisecond strings: ``15040.00000``."""
    return f"{value:.5f}"


def epoch_ms(moment: datetime) -> float:
    """Milliseconds since the epoch, whole (Plivo's ``recording_start_ms``)."""
    return float(round(moment.timestamp() * 1000))


def rounded_duration(seconds: float) -> int:
    """``rounded_recording_duration``: whole minutes, in seconds, at least one."""
    return max(ROUNDING, math.ceil(seconds / ROUNDING) * ROUNDING)


def format_add_time(moment: datetime) -> str:
    """``2022-04-12 10:38:53.523657+00:00`` (Python's ``str`` of the UTC time, with the
    microseconds always there, as Plivo prints them)."""
    return moment.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


@dataclass(frozen=True, slots=True)
class RecordingFilter:
    call_uuid: str | None = None
    from_number: str | None = None  # E.164 with "+"
    to_number: str | None = None
    recording_type: str | None = None
    subaccount: str | None = None
    bounds: tuple[Bound, ...] = ()  # on add_time
    limit: int = 20
    offset: int = 0
    # The query parameters as understood, to rebuild next/previous links.
    echo: dict[str, str] = field(default_factory=dict)


_ADD_TIME = "add_time"
# A trailing UTC offset, as ``str(datetime)`` prints it (the Python SDK sends that form
# when given a datetime): ``+00:00``, ``-05:30``.
_OFFSET = re.compile(r"(?P<sign>[+-])(?P<hours>\d{2}):(?P<minutes>\d{2})$")


def _add_time_op(key: str) -> Op | None:
    if key == _ADD_TIME:
        return Op.EQ
    for sep in ("__", "_"):  # Java and Node send one underscore
        base, _, suffix = key.rpartition(sep)
        if base == _ADD_TIME and suffix in ("gt", "gte", "lt", "lte"):
            return Op(suffix)
    return None


def parse_add_time(key: str, raw: str, op: Op) -> Bound:
    """One ``add_time`` filter value as a bound: ``YYYY-MM-DD HH:MM[:ss[.uuuuuu]]`` in UTC,
    or with a UTC offset (``+05:30``), which is then applied."""
    text = raw.strip()
    shift = timedelta()
    offset = _OFFSET.search(text)
    if offset:
        minutes = int(offset["hours"]) * 60 + int(offset["minutes"])
        shift = timedelta(minutes=-minutes if offset["sign"] == "+" else minutes)
        text = text[: offset.start()]
    span = parse_filter_time(text)
    if span is None:
        raise InvalidRequest(messages.bad_filter_time(key))
    try:
        return Bound(_ADD_TIME, op, span.start + shift, span.end + shift)
    except OverflowError:
        raise InvalidRequest(messages.bad_filter_time(key)) from None


def parse_recording_query(items: Iterable[tuple[str, str]], now: datetime) -> RecordingFilter:
    """Turn the list's query parameters into a filter; unknown parameters are ignored.

    Without an ``add_time`` bound the list covers the last seven days, as Plivo's does
    ("If you don't use the add_time filter ..., Plivo uses a search window of the last
    seven days")."""
    values: dict[str, str] = {}
    for key, value in items:
        values[key.strip().lower()] = value.strip()

    numbers: dict[str, str | None] = {}
    for name in ("from_number", "to_number"):
        raw = values.get(name)
        if raw:
            number = normalize_number(raw)
            if number is None:
                raise InvalidRequest(messages.invalid_phone(name))
            numbers[name] = number
        else:
            numbers[name] = None

    bounds: list[Bound] = []
    echo: dict[str, str] = {}
    for key, raw in values.items():
        op = _add_time_op(key)
        if op is None or raw == "":
            continue
        bounds.append(parse_add_time(key, raw, op))
        echo[_ADD_TIME + ("" if op is Op.EQ else "__" + op.value)] = raw
    if not bounds:
        bounds.append(Bound(_ADD_TIME, Op.GTE, now - DEFAULT_WINDOW, now))

    limit, offset = parse_paging(values)
    for name in ("call_uuid", "from_number", "to_number", "recording_type", "subaccount"):
        if values.get(name):
            echo[name] = values[name]
    return RecordingFilter(
        call_uuid=values.get("call_uuid") or None,
        from_number=numbers["from_number"],
        to_number=numbers["to_number"],
        recording_type=values.get("recording_type", "").lower() or None,
        subaccount=values.get("subaccount") or None,
        bounds=tuple(bounds),
        limit=limit,
        offset=offset,
        echo=echo,
    )
