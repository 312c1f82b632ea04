"""Helpers for the tests that drive Veil through Plivo's official Python SDK.

The SDK is used as shipped. The only thing added is a ``requests`` response hook, which
watches the HTTP exchanges the SDK makes (status, body, the request it sent) without
changing them. It is how these tests see the real status code behind an SDK exception,
and how any 5xx fails a test at once: the SDK would otherwise retry it twice and print
"Fallback for URL" (plivo-wire.md section 2.5), and a 5xx from Veil is always a bug.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import plivo
import pytest
import requests
from sqlalchemy import insert, select, update

from tests.utils import Admin, party_number, plivo_client
from veil.domain.accounts import Account
from veil.store.tables import number_claims, sessions

# The JSON type of every session attribute, as Go's struct (the strictest SDK) needs it
# (plivo-wire.md sections 1 rule 9 and 6). ``bool`` is checked exactly: True is not an int.
SESSION_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "session_uuid": str,
    "first_party": str,
    "second_party": str,
    "virtual_number": str,
    "status": str,
    "initiate_call_to_first_party": bool,
    "callback_url": str,
    "callback_method": str,
    "created_time": str,
    "modified_time": str,
    "expiry_time": str,
    "duration": int,
    "amount": int,
    "call_time_limit": int,
    "ring_timeout": int,
    "first_party_play_url": str,
    "second_party_play_url": str,
    "record": bool,
    "record_file_format": str,
    "recording_callback_url": str,
    "recording_callback_method": str,
    "interaction": type(None),  # no calls yet: null, never an object
    "total_call_amount": (int, float),
    "total_call_count": int,
    "total_call_billed_duration": int,
    "total_session_amount": (int, float),
    "last_interaction_time": str,
    "is_pin_authentication_required": bool,
    "generate_pin": bool,
    "generate_pin_length": int,
    "first_party_pin": str,
    "second_party_pin": str,
    "pin_prompt_play": str,
    "pin_retry": int,
    "pin_retry_wait": int,
    "incorrect_pin_play": str,
    "unknown_caller_play": str,
    "force_pin_authentication": bool,
    "virtual_number_cooloff_period": int,
    "create_session_with_single_party": bool,
    "geomatch": bool,
    "subaccount": str,
}


def parse_plivo_time(text: str) -> datetime:
    """Read Go's ``time.Time.String()`` form back: ``2024-02-01 06:28:15.5 +0000 UTC``."""
    return datetime.strptime(
        text.replace(" +0000 UTC", "+0000"),
        "%Y-%m-%d %H:%M:%S.%f%z" if "." in text else "%Y-%m-%d %H:%M:%S%z",
    )


def fields(obj: Any) -> dict[str, Any]:
    """The attributes of an SDK ``ResponseObject`` (one JSON object) as a dict."""
    return dict(vars(obj))


def assert_session_shape(obj: Any) -> None:
    """Every attribute of a session object is present with its exact JSON type."""
    values = fields(obj)
    missing = set(SESSION_FIELD_TYPES) - set(values)
    assert not missing, f"session object lacks {sorted(missing)}"
    for name, expected in SESSION_FIELD_TYPES.items():
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert type(values[name]) in allowed, (name, values[name])


class ResponseLog:
    """A ``requests`` response hook that remembers what the SDK received."""

    def __init__(self) -> None:
        self.responses: list[requests.Response] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.responses.append(response)
        assert response.status_code < 500, (
            f"Veil answered {response.status_code} to {response.request.method} "
            f"{response.url}: {response.text}"
        )

    @property
    def last(self) -> requests.Response:
        return self.responses[-1]

    def last_request_json(self) -> dict[str, Any]:
        body = self.last.request.body
        assert body is not None
        decoded: dict[str, Any] = json.loads(body)
        return decoded


def response_log(client: plivo.RestClient) -> ResponseLog:
    """The client's ``ResponseLog``, attached on first use."""
    hooks = client.session.hooks["response"]
    for hook in hooks:
        if isinstance(hook, ResponseLog):
            return hook
    log = ResponseLog()
    hooks.append(log)
    return log


def sdk_client(base_url: str, account: Account) -> plivo.RestClient:
    """The SDK pointed at Veil for ``account``, with the 5xx guard attached."""
    client = plivo_client(base_url, account)
    response_log(client)
    return client


@contextlib.contextmanager
def plivo_error(
    client: plivo.RestClient, exc_type: type[Exception], status: int, message: str
) -> Iterator[None]:
    """The block raises ``exc_type`` carrying exactly ``message``, from a response with
    ``status`` and Plivo's error body ``{"api_id": ..., "error": message}``."""
    log = response_log(client)
    seen = len(log.responses)
    with pytest.raises(exc_type) as info:
        yield
    assert str(info.value) == message
    # The exception came from Veil's answer, not from the SDK's own argument checks.
    assert len(log.responses) == seen + 1
    assert log.last.status_code == status
    assert log.last.headers["content-type"].startswith("application/json")
    body = log.last.json()
    assert body["error"] == message
    assert isinstance(body["api_id"], str) and body["api_id"]


def create(client: plivo.RestClient, **params: Any) -> Any:
    """``create_masking_session`` with two fresh US parties unless the caller names them."""
    params.setdefault("first_party", party_number())
    if not params.get("create_session_with_single_party"):
        params.setdefault("second_party", party_number())
    return client.masking_sessions.create_masking_session(**params)


def shift_session_times(admin: Admin, session_uuid: str, delta: timedelta, *columns: str) -> None:
    """Move some of a session's timestamps by ``delta`` (negative: into the past), so a test
    can see time pass without waiting. Goes through the table definitions so both
    databases store the value in their own format."""

    async def go() -> None:
        async with admin.db.write() as conn:
            row = (
                await conn.execute(select(sessions).where(sessions.c.uuid == session_uuid))
            ).one()
            await conn.execute(
                update(sessions)
                .where(sessions.c.uuid == session_uuid)
                .values({name: row._mapping[name] + delta for name in columns})
            )

    admin.run(go())


def expire_by_time(admin: Admin, session_uuid: str) -> None:
    """Make a session's expiry pass without the API: its expiry_time (and its claims'
    end) one second in the past. The status column still says "active" until the
    server's sweeper gets to it; readers must see "expired" either way."""
    past = datetime.now(UTC) - timedelta(seconds=1)

    async def go() -> None:
        async with admin.db.write() as conn:
            session_id = (
                await conn.execute(select(sessions.c.id).where(sessions.c.uuid == session_uuid))
            ).scalar_one()
            await conn.execute(
                update(sessions).where(sessions.c.id == session_id).values(expiry_time=past)
            )
            await conn.execute(
                update(number_claims)
                .where(number_claims.c.session_id == session_id)
                .values(busy_until=past)
            )

    admin.run(go())


def occupy_pins(admin: Admin, session_uuid: str, pins: Iterable[str]) -> None:
    """Make PINs busy on a session's virtual number for as long as that session's own
    claims last, as other PIN sessions on the number would."""

    async def go() -> None:
        async with admin.db.write() as conn:
            own = (
                await conn.execute(
                    select(number_claims)
                    .join(sessions, sessions.c.id == number_claims.c.session_id)
                    .where(sessions.c.uuid == session_uuid)
                    .limit(1)
                )
            ).one()
            await conn.execute(
                insert(number_claims),
                [
                    {
                        "key": "pin:" + pin,
                        "number_id": own.number_id,
                        "session_id": own.session_id,
                        "busy_until": own.busy_until,
                    }
                    for pin in pins
                ],
            )

    admin.run(go())


def end_cooloff(admin: Admin, session_uuid: str) -> None:
    """End the cool-off of an expired session now: its claims' ``busy_until`` moves one
    second into the past, as if the cool-off period had elapsed."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    admin.sql(
        "UPDATE number_claims SET busy_until = :past "
        "WHERE session_id = (SELECT id FROM sessions WHERE uuid = :uuid)",
        past=_db_time(admin, past),
        uuid=session_uuid,
    )


def _db_time(admin: Admin, moment: datetime) -> datetime | str:
    """A time as a raw SQL parameter: SQLite keeps SQLAlchemy's naive UTC text form."""
    if admin.url.startswith("sqlite"):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment
