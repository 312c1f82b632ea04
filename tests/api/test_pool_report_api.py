"""The pool report (``GET /v1/Account/{auth_id}/Number/Report/``) over raw HTTP, on a real
server: sessions made through the API, figures as veil.domain.pool_report defines them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_wire_compat import Api, assert_error
from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account

REPORT = "Number/Report/"


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


def report(api: Api, query: str = "") -> list[dict[str, Any]]:
    response = api.request("GET", api.path(REPORT) + (f"?{query}" if query else ""))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"api_id", "objects"}
    assert isinstance(body["api_id"], str) and body["api_id"]
    objects: list[dict[str, Any]] = body["objects"]
    return objects


def pool(subaccount: str, numbers: int, n: int, needed: int, status: str) -> dict[str, Any]:
    """A pool whose sessions are all live: in use and N now are those of the week."""
    return {
        "subaccount": subaccount,
        "country": "US",
        "numbers": numbers,
        "in_use": needed,
        "busiest_party_now": n,
        "busiest_party_7d": n,
        "needed_7d": needed,
        "plivo_rule_7d": 2 * n - 1,
        "headroom": numbers - needed,
        "status": status,
    }


def test_report_of_a_busy_agent(admin: Admin, account: Account, api: Api) -> None:
    assert report(api) == []
    admin.add_numbers(account, 3)
    agent = party_number()
    api.create({"first_party": agent})
    api.create({"first_party": agent})
    assert report(api) == [pool("", 3, 2, 2, "ok")]
    # Without the trailing slash (Node's SDK): the same route, never a number.
    response = api.request("GET", api.path("Number/Report"))
    assert response.status_code == 200, response.text
    assert response.json()["objects"] == [pool("", 3, 2, 2, "ok")]


def test_subaccount_pools(server: Server, admin: Admin, account: Account, api: Api) -> None:
    sub = admin.create_account(parent=account)
    admin.add_numbers(account, 1)
    admin.add_numbers(account, 1, subaccount=sub)
    api.create()
    with Api.open(server, sub) as as_sub:
        as_sub.create()
        mine = [pool(sub.auth_id, 1, 1, 1, "tight")]
        assert report(as_sub) == mine
        assert report(as_sub, f"subaccount={sub.auth_id}") == mine
        # A subaccount cannot see its parent's pools.
        assert_error(
            as_sub.request("GET", as_sub.path(REPORT) + f"?subaccount={account.auth_id}"),
            400,
            messages.SUBACCOUNT_NOT_FOUND,
        )
    assert report(api) == [pool("", 1, 1, 1, "tight"), *mine]
    assert report(api, f"subaccount={sub.auth_id}") == mine
    stranger = admin.create_account(parent=admin.create_account())
    assert_error(
        api.request("GET", api.path(REPORT) + f"?subaccount={stranger.auth_id}"),
        400,
        messages.SUBACCOUNT_NOT_FOUND,
    )


def test_report_needs_credentials(server: Server, admin: Admin, account: Account) -> None:
    response = httpx.get(server.url + f"/v1/Account/{account.auth_id}/{REPORT}")
    assert_error(response, 401, messages.AUTH_FAILED)
    other = admin.create_account()
    with Api.open(server, other) as as_other:
        response = as_other.request("GET", f"/v1/Account/{account.auth_id}/{REPORT}")
        assert_error(response, 401, messages.AUTH_ID_MISMATCH)
