"""Errors are always Plivo's JSON envelope, and no client mistake is ever a 5xx.

Every SDK retries a voice-API 5xx twice more, so a create answered with 500 may run
three times, and Go swallows the error on the first retry; Go also treats an empty error
body as success (plivo-wire.md section 1, rule 8; section 2.5). So: 4xx with
``{"api_id", "error"}`` and ``Content-Type: application/json`` for every mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_wire_compat import LEGACY, MASKING, Api, Sweep, assert_error
from tests.servers import Server
from tests.utils import Admin, party_number
from veil.api.plivo.schemas import SessionCreateBody
from veil.domain import messages
from veil.domain.accounts import Account


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


# ---------------------------------------------------------------------------------------
# Bodies the server cannot read
# ---------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"first_party": ', JSON),  # truncated
        (b"{'first_party': '+14155550100'}", JSON),  # not JSON
        (b'[{"first_party": "+14155550100"}]', JSON),  # an array, not an object
        (b'"first_party"', JSON),
        (b"42", JSON),
        (b"null", JSON),
        (b"\xff\xfe{}", JSON),  # not UTF-8
        (b'{"first_party": "\\ud800"}', JSON),  # a lone surrogate
        (b"first_party=%ff%fe", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
    ids=lambda value: value[:24] if isinstance(value, bytes) else "",
)
def test_unreadable_create_body(
    api: Api, admin: Admin, account: Account, content: bytes, headers: dict[str, str]
) -> None:
    admin.add_numbers(account)
    for path in (api.path(f"{MASKING}/"), api.path(f"{LEGACY}/")):
        response = api.request("POST", path, content=content, headers=headers)
        assert_error(response, 400)


def test_malformed_json_and_array_bodies_say_so(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    for path in (api.path(f"{MASKING}/"), api.path(f"{MASKING}/{uuid}/")):
        for content in (b'{"record": tru', b'[{"record": true}]'):
            response = api.request("POST", path, content=content, headers=JSON)
            assert_error(response, 400, messages.INVALID_BODY)
    assert api.get(uuid)["record"] is False


def test_huge_body(api: Api, admin: Admin, account: Account) -> None:
    """Over 64 KiB (veil/api/plivo/body.py MAX_BODY_BYTES): refused, not parsed."""
    admin.add_numbers(account)
    body = {
        "first_party": party_number(),
        "second_party": party_number(),
        "padding": "x" * (65 * 1024),
    }
    response = api.request("POST", api.path(f"{MASKING}/"), json=body)
    assert_error(response, 400, messages.INVALID_BODY)
    assert api.list()["meta"]["total_count"] == 0


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("api_name", [MASKING, LEGACY])
def test_wrong_method(api: Api, admin: Admin, account: Account, method: str, api_name: str):
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    for path in (f"{api_name}/{uuid}/", f"{api_name}/{uuid}", f"{api_name}/"):
        response = api.request(method, api.path(path), json={"record": True})
        assert_error(response, 405, messages.METHOD_NOT_ALLOWED)
    assert api.get(uuid)["record"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/v1/",
        "/v1/Nothing",
        "/v1/Account/{auth_id}/Nothing/",
        "/v1/Account/{auth_id}/Masking/",
        "/v1/Account/{auth_id}/Masking/Session/{uuid}/Extra/",
        "/v1/Account/{auth_id}/Call/",
    ],
)
def test_unknown_path(api: Api, path: str) -> None:
    response = api.request("GET", path.format(auth_id=api.auth_id, uuid="abc"))
    assert_error(response, 404, messages.RESOURCE_NOT_FOUND)


# ---------------------------------------------------------------------------------------
# Robustness sweep: wrong-typed values for every parameter
# ---------------------------------------------------------------------------------------

WRONG_VALUES: list[Any] = [
    [],
    ["+14155550100"],
    {},
    {"a": 1},
    -1,
    -(10**30),
    10**30,  # a JSON number no 64-bit integer holds
    2**63,
    1.5,
    True,
    "",
    "   ",
    "ünïcødé ☎ 🙂",
    "http://example.com/a\u0000b.mp3",  # NUL: PostgreSQL text cannot hold it
    "\u0000",
    "9" * 5000,  # digits past Python's int() string limit (4300)
    "x" * 5000,
]

CREATE_PARAMETERS = sorted(SessionCreateBody.model_fields)


def test_create_sweep(api: Api, admin: Admin, account: Account) -> None:
    """Every create parameter with every wrong value, on both APIs."""
    admin.add_numbers(account)
    sweep = Sweep()
    for name in CREATE_PARAMETERS:
        for value in WRONG_VALUES:
            body = {"first_party": party_number(), "second_party": party_number(), name: value}
            for api_name in (MASKING, LEGACY):
                response = api.request("POST", api.path(f"{api_name}/"), json=body)
                sweep.check(response, api_name, name, value)
    sweep.assert_clean()


def test_update_sweep(api: Api, admin: Admin, account: Account) -> None:
    """Every parameter an SDK may send on update, on a single-party session (the kind
    whose parties may still change)."""
    admin.add_numbers(account)
    created = api.create({"create_session_with_single_party": True, "second_party": None})
    item = api.path(f"{MASKING}/{created['session_uuid']}/")
    sweep = Sweep()
    for name in [*CREATE_PARAMETERS, "session_uuid"]:
        for value in WRONG_VALUES:
            sweep.check(api.request("POST", item, json={name: value}), name, value)
    sweep.assert_clean()


LIST_PARAMETERS = [
    "first_party",
    "second_party",
    "virtual_number",
    "status",
    "subaccount",
    "limit",
    "offset",
    *(
        column + suffix
        for column in ("created_time", "expiry_time", "duration", "session_duration")
        for suffix in ("", "__gt", "__gte", "__lt", "__lte", "_gt", "s")
    ),
]

WRONG_QUERY_VALUES = [
    "",
    "abc",
    "-1",
    "1.5",
    "ü",
    "\u0000",
    "9" * 5000,
    str(2**31),  # past a 32-bit integer column
    str(10**20),  # past any 64-bit integer
    "0001-01-01",
    "9999-12-31",  # the last day: its end is past datetime.max
    "9999-12-31 23:59",
    "2024-02-30 10:00",
    "2024-01-01 25:00",
]


def test_list_query_sweep(api: Api) -> None:
    sweep = Sweep()
    for name in LIST_PARAMETERS:
        for value in WRONG_QUERY_VALUES:
            response = api.request("GET", api.path(f"{MASKING}/"), params={name: value})
            sweep.check(response, name, value)
    sweep.assert_clean()


def test_odd_session_uuid_in_path(api: Api) -> None:
    sweep = Sweep()
    for segment in ("%00", "a%00b", "%FF", "x" * 5000, "%C3%BC", "9" * 40, "%20"):
        for method in ("GET", "POST", "DELETE"):
            response = api.request(method, api.path(f"{MASKING}/{segment}/"))
            sweep.check(response, method, segment)
            if response.status_code < 500:
                assert_error(response, 404, messages.SESSION_NOT_FOUND)
    sweep.assert_clean()


# Targeted cases the sweeps found, with the answer each should get.

INTEGER_PARAMETERS = [
    "session_expiry",
    "call_time_limit",
    "ring_timeout",
    "generate_pin_length",
    "pin_retry",
    "pin_retry_wait",
    "virtual_number_cooloff_period",
]


def test_overlong_digit_string_is_out_of_range(api: Api, admin: Admin, account: Account) -> None:
    """Ruby sends integers as strings (section 3.3). A string of 5000 digits is still an
    integer, just past every maximum; that Python's int() refuses more than 4300 digits
    must not turn it into a 500."""
    admin.add_numbers(account)
    wrong = {}
    for name in INTEGER_PARAMETERS:
        body = {"first_party": party_number(), "second_party": party_number(), name: "9" * 5000}
        response = api.request("POST", api.path(f"{MASKING}/"), json=body)
        if response.status_code != 400 or response.json()["error"] != messages.out_of_range(name):
            wrong[name] = (response.status_code, response.json().get("error"))
    assert wrong == {}


URL_PARAMETERS = [
    "callback_url",
    "recording_callback_url",
    "first_party_play_url",
    "second_party_play_url",
    "pin_prompt_play",
    "incorrect_pin_play",
    "unknown_caller_play",
]


def test_url_with_nul_is_not_a_url(api: Api, admin: Admin, account: Account) -> None:
    """A raw NUL is allowed nowhere in a URL (RFC 3986 section 2), and PostgreSQL text
    cannot store one."""
    admin.add_numbers(account)
    wrong = {}
    for name in URL_PARAMETERS:
        body = {
            "first_party": party_number(),
            "second_party": party_number(),
            name: "https://example.com/a\u0000b.mp3",
        }
        response = api.request("POST", api.path(f"{MASKING}/"), json=body)
        if response.status_code != 400 or response.json().get("error") != messages.not_url(name):
            wrong[name] = (response.status_code, response.json().get("error"))
    assert wrong == {}


def test_subaccount_with_nul(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    body = {"first_party": party_number(), "second_party": party_number(), "subaccount": "SA\u0000"}
    response = api.request("POST", api.path(f"{MASKING}/"), json=body)
    assert_error(response, 400, messages.SUBACCOUNT_NOT_FOUND)
    response = api.request("GET", api.path(f"{MASKING}/"), params={"subaccount": "SA\u0000"})
    assert_error(response, 400, messages.SUBACCOUNT_NOT_FOUND)


def test_overlong_limit(api: Api) -> None:
    response = api.request("GET", api.path(f"{MASKING}/"), params={"limit": "9" * 5000})
    assert_error(response, 400, messages.LIMIT_RANGE)


@pytest.mark.parametrize(
    ("user", "in_path"),
    [
        ("MA\u0000", "MA%00"),  # NUL: PostgreSQL text cannot hold it
        ("MA" + "x" * 5000, "MA" + "x" * 5000),
        ("ÜÜÜ", "%C3%9C%C3%9C%C3%9C"),
        ("SA" + "0" * 18, "SA" + "0" * 18),
    ],
    ids=["nul", "long", "unicode", "unknown"],
)
def test_odd_credentials(server: Server, user: str, in_path: str) -> None:
    response = httpx.get(
        server.url + f"/v1/Account/{in_path}/{MASKING}/", auth=(user, "\u0000token")
    )
    assert_error(response, 401)


# ---------------------------------------------------------------------------------------
# Operations endpoints
# ---------------------------------------------------------------------------------------


def test_openapi_lists_the_resources(server: Server) -> None:
    response = httpx.get(server.url + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/v1/Account/{auth_id}/Masking/Session/",
        "/v1/Account/{auth_id}/Masking/Session/{session_uuid}/",
        "/v1/Account/{auth_id}/Session/",
        "/v1/Account/{auth_id}/Session/{session_uuid}/",
        "/v1/Account/{auth_id}/Number/",
        "/v1/Account/{auth_id}/Number/{number}/",
        "/v1/Account/{auth_id}/Subaccount/",
        "/v1/Account/{auth_id}/Subaccount/{subaccount}/",
    ):
        assert path in document["paths"], path
    session_methods = document["paths"]["/v1/Account/{auth_id}/Masking/Session/{session_uuid}/"]
    assert {"get", "post", "delete"} <= set(session_methods)


def test_docs_and_health(server: Server) -> None:
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
