"""The legacy session API, ``/v1/Account/{auth_id}/Session/`` (seeds 000 and 002).

It is served beside ``/Masking/Session/`` with the same bodies, but with its own defaults
(session_expiry 1800, call_time_limit 14400) and its own rule for call_time_limit: an
invalid value gives the default, one below the minimum the minimum, one above the
maximum the maximum (seed 000). Seed values are written out here on purpose: they are
the specification, and the test must fail if the code's constants drift from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_wire_compat import LEGACY, MASKING, Api, assert_error, plivo_time
from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account

# Seed 000: "Defaults to 1800 seconds Max: 86400 seconds Min: 60 seconds" (session_expiry)
# and "Defaults to 14,400 seconds (4 hours) Max: 86400 seconds Min: 60 seconds".
LEGACY_SESSION_EXPIRY_DEFAULT = 1800
LEGACY_CALL_TIME_LIMIT_DEFAULT = 14400


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


def test_create_has_the_current_apis_shape(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account, 2)
    first, second = party_number(), party_number()
    response = api.request(
        "POST", api.path(f"{LEGACY}/"), json={"first_party": first, "second_party": second}
    )
    assert response.status_code == 201, response.text
    legacy = response.json()
    current = api.create()
    assert (
        set(legacy)
        == set(current)
        == {
            "api_id",
            "session_uuid",
            "virtual_number",
            "message",
            "session",
        }
    )
    assert set(legacy["session"]) == set(current["session"])
    assert legacy["message"] == messages.SESSION_CREATED
    session = legacy["session"]
    assert (session["first_party"], session["second_party"]) == (first[1:], second[1:])
    assert session["status"] == "active"
    # With "+" at the top level, without it inside the session (plivo-wire.md section 5).
    assert legacy["virtual_number"] == "+" + session["virtual_number"]


def test_create_defaults(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    session = api.create(api=LEGACY)["session"]
    assert session["duration"] == LEGACY_SESSION_EXPIRY_DEFAULT
    assert session["call_time_limit"] == LEGACY_CALL_TIME_LIMIT_DEFAULT
    created, expiry = plivo_time(session["created_time"]), plivo_time(session["expiry_time"])
    assert (expiry - created).total_seconds() == LEGACY_SESSION_EXPIRY_DEFAULT


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param("abc", 14400, id="invalid-gives-default"),
        pytest.param({"x": 1}, 14400, id="object-gives-default"),
        pytest.param(10, 60, id="below-min-gives-min"),
        pytest.param(-5, 60, id="negative-gives-min"),
        pytest.param(999999, 86400, id="above-max-gives-max"),
        pytest.param("999999", 86400, id="string-above-max-gives-max"),
        # More digits than Python's int() accepts (4300): still above the maximum.
        pytest.param("9" * 5000, 86400, id="5000-digits-gives-max"),
        pytest.param(60, 60, id="min-kept"),
        pytest.param(86400, 86400, id="max-kept"),
        pytest.param(3600, 3600, id="in-range-kept"),
    ],
)
def test_call_time_limit_is_clamped(
    api: Api, admin: Admin, account: Account, sent: Any, stored: int
) -> None:
    admin.add_numbers(account)
    session = api.create({"call_time_limit": sent}, api=LEGACY)["session"]
    assert session["call_time_limit"] == stored


def test_current_api_rejects_what_legacy_clamps(api: Api, admin: Admin, account: Account) -> None:
    # Only the legacy page documents clamping; the current API answers with the error.
    admin.add_numbers(account)
    body = {"first_party": party_number(), "second_party": party_number(), "call_time_limit": 10}
    response = api.request("POST", api.path(f"{MASKING}/"), json=body)
    assert_error(response, 400, messages.out_of_range("call_time_limit"))


@pytest.mark.parametrize("session_expiry", [59, 86401, -1, 10**9])
def test_session_expiry_out_of_range(
    api: Api, admin: Admin, account: Account, session_expiry: int
) -> None:
    # Seed 002: "Invalid parameter. session_expiry is outside the allowed range."
    admin.add_numbers(account)
    body = {
        "first_party": party_number(),
        "second_party": party_number(),
        "session_expiry": session_expiry,
    }
    response = api.request("POST", api.path(f"{LEGACY}/"), json=body)
    assert_error(response, 400, messages.out_of_range("session_expiry"))


def test_get_update_list_delete(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    created = api.create({"session_expiry": 600}, api=LEGACY)
    uuid = created["session_uuid"]
    item = api.path(f"{LEGACY}/{uuid}/")

    got = api.request("GET", item)
    assert got.status_code == 200, got.text
    assert set(got.json()) == {"api_id", "response"}
    assert got.json()["response"]["session_uuid"] == uuid
    assert got.json()["response"]["duration"] == 600

    updated = api.request("POST", item, json={"call_time_limit": 1800, "session_expiry": 900})
    assert updated.status_code == 200, updated.text
    assert updated.json()["message"] == messages.SESSION_UPDATED
    session = updated.json()["session"]
    assert session["call_time_limit"] == 1800
    modified, expiry = plivo_time(session["modified_time"]), plivo_time(session["expiry_time"])
    assert (expiry - modified).total_seconds() == 900

    page = api.list(api=LEGACY)
    assert page["meta"]["total_count"] == 1
    [obj] = page["objects"]
    assert obj["session_uuid"] == uuid
    assert obj["call_time_limit"] == 1800

    deleted = api.request("DELETE", item)
    assert deleted.status_code == 200, deleted.text
    assert set(deleted.json()) == {"api_id", "message"}
    assert deleted.json()["message"] == messages.SESSION_EXPIRED
    assert api.get(uuid, api=LEGACY)["status"] == "expired"
    # Seed 002: "400 Session already expired."
    assert_error(api.request("DELETE", item), 400, messages.ALREADY_EXPIRED)
    assert_error(api.request("POST", item, json={"record": True}), 400, messages.ALREADY_EXPIRED)


def test_list_resource_uri_names_the_api_it_was_listed_on(
    api: Api, admin: Admin, account: Account
) -> None:
    """A legacy list links to legacy paths; the same session listed on the current API
    links to ``/Masking/Session/`` (plivo-wire.md section 5)."""
    admin.add_numbers(account)
    uuid = api.create(api=LEGACY)["session_uuid"]
    [legacy] = api.list(api=LEGACY)["objects"]
    [current] = api.list(api=MASKING)["objects"]
    assert legacy["resource_uri"] == f"/v1/Account/{account.auth_id}/Session/{uuid}/"
    assert current["resource_uri"] == f"/v1/Account/{account.auth_id}/Masking/Session/{uuid}/"
    # The resource_uri is a path the server answers.
    assert api.request("GET", legacy["resource_uri"]).json()["response"]["session_uuid"] == uuid


def test_legacy_missing_party_messages(api: Api, admin: Admin, account: Account) -> None:
    # Seed 002's wording for the mandatory and the invalid party.
    admin.add_numbers(account)
    path = api.path(f"{LEGACY}/")
    assert_error(
        api.request("POST", path, json={"second_party": party_number()}),
        400,
        messages.missing("first_party"),
    )
    assert_error(
        api.request("POST", path, json={"first_party": party_number()}),
        400,
        messages.missing("second_party"),
    )
    assert_error(
        api.request("POST", path, json={"first_party": "12", "second_party": party_number()}),
        400,
        messages.invalid_phone("first_party"),
    )
    assert_error(
        api.request("POST", path, json={"first_party": party_number(), "second_party": "abc"}),
        400,
        messages.invalid_phone("second_party"),
    )
