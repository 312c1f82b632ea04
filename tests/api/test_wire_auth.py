"""Authentication and isolation over raw HTTP.

Every SDK sends HTTP Basic ``auth_id:auth_token`` and puts the same auth_id in the path
(plivo-wire.md section 1, rule 2). A failure is a 401 with Plivo's JSON error body; a
session of another account is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_wire_compat import MASKING, Api, assert_error
from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


def _sessions_path(auth_id: str) -> str:
    return f"/v1/Account/{auth_id}/{MASKING}/"


def test_no_authorization_header(server: Server, account: Account) -> None:
    response = httpx.get(server.url + _sessions_path(account.auth_id))
    assert_error(response, 401, messages.AUTH_FAILED)
    # RFC 7235 section 3.1: a 401 carries a challenge.
    assert response.headers["www-authenticate"].lower().startswith("basic")


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!not-base64", "Bearer abc", "Basic " + "QUJD", "Basic"],
)
def test_malformed_authorization_header(
    server: Server, account: Account, authorization: str
) -> None:
    response = httpx.get(
        server.url + _sessions_path(account.auth_id), headers={"Authorization": authorization}
    )
    assert_error(response, 401)
    assert "www-authenticate" in response.headers


def test_wrong_token(server: Server, account: Account) -> None:
    response = httpx.get(
        server.url + _sessions_path(account.auth_id), auth=(account.auth_id, "not-the-token")
    )
    assert_error(response, 401, messages.AUTH_FAILED)
    assert "www-authenticate" in response.headers


def test_unknown_auth_id(server: Server) -> None:
    auth_id = "MA" + "Z" * 18
    response = httpx.get(server.url + _sessions_path(auth_id), auth=(auth_id, "token"))
    assert_error(response, 401, messages.AUTH_FAILED)


def test_other_accounts_auth_id_in_path(
    server: Server, admin: Admin, account: Account, api: Api
) -> None:
    """Valid credentials do not open another account's URL space, for any method."""
    other = admin.create_account()
    admin.add_numbers(other)
    admin.add_numbers(account)
    with Api.open(server, other) as theirs:
        their_uuid = theirs.create()["session_uuid"]
    base = f"/v1/Account/{other.auth_id}/"
    attempts = [
        ("GET", base + f"{MASKING}/"),
        ("POST", base + f"{MASKING}/"),
        ("GET", base + f"{MASKING}/{their_uuid}/"),
        ("POST", base + f"{MASKING}/{their_uuid}/"),
        ("DELETE", base + f"{MASKING}/{their_uuid}/"),
        ("GET", base + f"Session/{their_uuid}/"),
        ("GET", base + "Number/"),
        ("GET", base + "Subaccount/"),
    ]
    for method, path in attempts:
        body = {"first_party": party_number(), "second_party": party_number()}
        response = api.request(method, path, json=body if method == "POST" else None)
        assert_error(response, 401, messages.AUTH_ID_MISMATCH)
    with Api.open(server, other) as theirs:
        assert theirs.get(their_uuid)["status"] == "active"
        assert theirs.list()["meta"]["total_count"] == 1


def test_other_accounts_session_is_not_found(
    server: Server, admin: Admin, account: Account, api: Api
) -> None:
    other = admin.create_account()
    admin.add_numbers(other)
    with Api.open(server, other) as theirs:
        created = theirs.create({"callback_url": "https://their.example/cb"})
    uuid = created["session_uuid"]
    secrets = [
        created["session"]["first_party"],
        created["session"]["second_party"],
        created["session"]["virtual_number"],
        "their.example",
    ]
    for method, path in [
        ("GET", f"{MASKING}/{uuid}/"),
        ("POST", f"{MASKING}/{uuid}/"),
        ("DELETE", f"{MASKING}/{uuid}/"),
        ("GET", f"Session/{uuid}/"),
        ("DELETE", f"Session/{uuid}/"),
    ]:
        body = {"record": True} if method == "POST" else None
        response = api.request(method, api.path(path), json=body)
        assert_error(response, 404, messages.SESSION_NOT_FOUND)
        assert not any(secret in response.text for secret in secrets), response.text
    with Api.open(server, other) as theirs:
        session = theirs.get(uuid)
    assert (session["status"], session["record"]) == ("active", False)
    assert created["session_uuid"] not in str(api.list())


@pytest.mark.parametrize(
    "unknown", [str(uuidlib.uuid4()), "not-a-uuid", "0" * 36, "x" * 300, "%C3%BC"]
)
def test_unknown_session(api: Api, unknown: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = api.request(method, api.path(f"{MASKING}/{unknown}/"))
        assert_error(response, 404, messages.SESSION_NOT_FOUND)


def test_subaccount_sees_only_its_own(server: Server, admin: Admin, account: Account, api: Api):
    sub = admin.create_account(parent=account)
    [main_number] = admin.add_numbers(account)
    [sub_number] = admin.add_numbers(account, subaccount=sub)
    mains = api.create()["session_uuid"]
    for_sub = api.create({"subaccount": sub.auth_id})
    assert for_sub["virtual_number"] == sub_number
    with Api.open(server, sub) as as_sub:
        own = as_sub.create()
        assert own["virtual_number"] == sub_number
        assert own["session"]["subaccount"] == sub.auth_id

        page = as_sub.list()
        assert page["meta"]["total_count"] == 2
        assert {o["session_uuid"] for o in page["objects"]} == {
            for_sub["session_uuid"],
            own["session_uuid"],
        }
        assert_error(
            as_sub.request("GET", as_sub.path(f"{MASKING}/{mains}/")),
            404,
            messages.SESSION_NOT_FOUND,
        )
        assert_error(
            as_sub.request("DELETE", as_sub.path(f"{MASKING}/{mains}/")),
            404,
            messages.SESSION_NOT_FOUND,
        )
        numbers = as_sub.request("GET", as_sub.path("Number/"))
        assert numbers.status_code == 200, numbers.text
        assert [n["number"] for n in numbers.json()["objects"]] == [sub_number.lstrip("+")]
        assert_error(
            as_sub.request("GET", as_sub.path(f"Number/{main_number.lstrip('+')}/")),
            404,
            messages.NUMBER_NOT_FOUND,
        )
        # A subaccount cannot reach its parent's URL space with its own credentials.
        assert_error(
            as_sub.request("GET", f"/v1/Account/{account.auth_id}/{MASKING}/"),
            401,
            messages.AUTH_ID_MISMATCH,
        )

    # The parent sees everything, and one subaccount's with the subaccount filter.
    assert api.list()["meta"]["total_count"] == 3
    filtered = api.list(f"subaccount={sub.auth_id}")
    assert {o["session_uuid"] for o in filtered["objects"]} == {
        for_sub["session_uuid"],
        own["session_uuid"],
    }
    numbers = api.request("GET", api.path("Number/"))
    assert {n["number"] for n in numbers.json()["objects"]} == {
        main_number.lstrip("+"),
        sub_number.lstrip("+"),
    }
    numbers = api.request("GET", api.path(f"Number/?subaccount={sub.auth_id}"))
    assert [n["number"] for n in numbers.json()["objects"]] == [sub_number.lstrip("+")]
    # The parent reaches its subaccount's data through its own auth_id, not the sub's.
    assert_error(
        api.request("GET", f"/v1/Account/{sub.auth_id}/{MASKING}/"), 401, messages.AUTH_ID_MISMATCH
    )


def test_subaccount_filter_must_name_own_subaccount(
    admin: Admin, account: Account, api: Api
) -> None:
    stranger = admin.create_account(parent=admin.create_account())
    response = api.request("GET", api.path(f"{MASKING}/?subaccount={stranger.auth_id}"))
    assert_error(response, 400, messages.SUBACCOUNT_NOT_FOUND)
    body = {
        "first_party": party_number(),
        "second_party": party_number(),
        "subaccount": stranger.auth_id,
    }
    admin.add_numbers(account)
    response = api.request("POST", api.path(f"{MASKING}/"), json=body)
    assert_error(response, 400, messages.SUBACCOUNT_NOT_FOUND)


def test_disabled_subaccount_is_refused(
    server: Server, admin: Admin, account: Account, api: Api
) -> None:
    # The subaccount is never used before it is disabled, so no authentication cache
    # (veil/service/accounts.py AUTH_CACHE_SECONDS) can hide the change.
    sub = admin.create_account(parent=account)
    admin.add_numbers(account, subaccount=sub)
    response = api.request("POST", api.path(f"Subaccount/{sub.auth_id}/"), json={"enabled": False})
    assert response.status_code == 202, response.text
    with Api.open(server, sub) as as_sub:
        assert_error(as_sub.request("GET", as_sub.path(f"{MASKING}/")), 401, messages.AUTH_FAILED)
        body = {"first_party": party_number(), "second_party": party_number()}
        response = as_sub.request("POST", as_sub.path(f"{MASKING}/"), json=body)
        assert_error(response, 401, messages.AUTH_FAILED)
    # Nor can the parent create sessions in its name.
    body = {"first_party": party_number(), "second_party": party_number()}
    response = api.request(
        "POST", api.path(f"{MASKING}/"), json={**body, "subaccount": sub.auth_id}
    )
    assert_error(response, 400, messages.SUBACCOUNT_NOT_FOUND)
