"""The Number resource (``/v1/Account/{auth_id}/Number/``) over raw HTTP.

The pool of virtual numbers sessions are allocated from, shaped like Plivo's "add a
number from your own carrier" API (veil/api/plivo/numbers.py): add answers 202, one
number reads like Plivo's number object (digits without ``+``), delete answers 204.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_wire_compat import MASKING, Api, Sweep, assert_error
from tests.servers import Server
from tests.utils import Admin, party_number, pool_number
from veil.domain import messages
from veil.domain.accounts import Account


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


def add(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.request("POST", api.path("Number/"), json=body)
    assert response.status_code == 202, response.text
    added: list[dict[str, Any]] = response.json()["numbers"]
    return added


def listed(api: Api, query: str = "") -> dict[str, Any]:
    response = api.request("GET", api.path("Number/") + (f"?{query}" if query else ""))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"api_id", "meta", "objects"}
    page: dict[str, Any] = response.json()
    return page


def get_number(api: Api, number: str) -> dict[str, Any]:
    response = api.request("GET", api.path(f"Number/{number.lstrip('+')}/"))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def digits(numbers: list[dict[str, Any]]) -> list[str]:
    return [n["number"] for n in numbers]


def test_add_comma_separated_string_and_list(api: Api) -> None:
    a, b, c = pool_number(), pool_number(), pool_number()
    # With and without "+", and with spaces after the comma.
    added = add(api, {"numbers": f"{a}, {b.lstrip('+')}"})
    assert sorted(digits(added)) == sorted([a[1:], b[1:]])
    assert digits(add(api, {"numbers": [c]})) == [c[1:]]
    page = listed(api)
    assert page["meta"]["total_count"] == 3
    assert sorted(digits(page["objects"])) == sorted(n[1:] for n in (a, b, c))
    obj = page["objects"][0]
    assert obj["resource_uri"] == f"/v1/Account/{api.auth_id}/Number/{obj['number']}/"
    assert (obj["country_iso"], obj["reserved"], obj["sub_account"]) == ("US", False, None)


def test_reserved_numbers_are_not_allocated(api: Api) -> None:
    [number] = add(api, {"numbers": pool_number(), "reserved": True})
    assert number["reserved"] is True
    body = {"first_party": party_number(), "second_party": party_number()}
    assert_error(
        api.request("POST", api.path(f"{MASKING}/"), json=body), 400, messages.POOL_EXHAUSTED
    )
    item = api.path(f"Number/{number['number']}/")
    response = api.request("POST", item, json={"reserved": False})
    assert response.status_code == 202, response.text
    assert api.create()["virtual_number"] == "+" + number["number"]


def test_add_for_a_subaccount(server: Server, admin: Admin, account: Account, api: Api) -> None:
    sub = admin.create_account(parent=account)
    [number] = add(api, {"numbers": pool_number(), "subaccount": sub.auth_id})
    assert number["sub_account"] == sub.auth_id
    with Api.open(server, sub) as as_sub:
        assert get_number(as_sub, number["number"])["sub_account"] == sub.auth_id
        # The subaccount's sessions are allocated from it.
        assert as_sub.create()["virtual_number"] == "+" + number["number"]
    stranger = admin.create_account(parent=admin.create_account())
    response = api.request(
        "POST", api.path("Number/"), json={"numbers": pool_number(), "subaccount": stranger.auth_id}
    )
    assert_error(response, 400, messages.SUBACCOUNT_NOT_FOUND)


def test_list_filters_and_paging(admin: Admin, account: Account, api: Api) -> None:
    sub = admin.create_account(parent=account)
    numbers = [pool_number() for _ in range(3)]
    add(api, {"numbers": ",".join(numbers)})
    [scoped] = add(api, {"numbers": pool_number(), "subaccount": sub.auth_id, "alias": "desk"})

    one = numbers[1][1:]
    assert digits(listed(api, f"number_startswith={one}")["objects"]) == [one]
    assert digits(listed(api, f"number_startswith=%2B{one}")["objects"]) == [one]
    assert listed(api, "number_startswith=1")["meta"]["total_count"] == 4
    assert listed(api, "number_startswith=49")["meta"]["total_count"] == 0
    assert digits(listed(api, "alias=desk")["objects"]) == [scoped["number"]]
    assert digits(listed(api, f"subaccount={sub.auth_id}")["objects"]) == [scoped["number"]]

    first = listed(api, "limit=3")
    assert len(first["objects"]) == 3
    assert first["meta"]["total_count"] == 4
    assert first["meta"]["next"] is not None and first["meta"]["previous"] is None
    rest = listed(api, "limit=3&offset=3")
    assert len(rest["objects"]) == 1
    assert rest["meta"]["next"] is None and rest["meta"]["previous"] is not None
    assert set(digits(first["objects"] + rest["objects"])) == {
        *(n[1:] for n in numbers),
        scoped["number"],
    }
    assert_error(api.request("GET", api.path("Number/?limit=0")), 400, messages.LIMIT_RANGE)
    assert_error(api.request("GET", api.path("Number/?offset=-1")), 400, messages.OFFSET_NEGATIVE)


@pytest.mark.parametrize(
    "spelling",
    ["{d}/", "+{d}/", "%2B{d}/", "{d}", "%2B{d}"],
    ids=["digits", "plus", "encoded-plus", "no-slash", "encoded-plus-no-slash"],
)
def test_get_one_number(api: Api, spelling: str) -> None:
    [number] = add(api, {"numbers": pool_number()})
    path = api.path("Number/" + spelling.format(d=number["number"]))
    response = api.raw("GET", path)
    assert response.status_code == 200, response.text
    assert response.json()["number"] == number["number"]
    assert response.json()["resource_uri"] == number["resource_uri"]


def test_update_alias_reserved_and_subaccount(admin: Admin, account: Account, api: Api) -> None:
    sub = admin.create_account(parent=account)
    [number] = add(api, {"numbers": pool_number(), "subaccount": sub.auth_id})
    path = api.path(f"Number/{number['number']}/")

    response = api.request("POST", path, json={"alias": "front desk", "reserved": True})
    assert response.status_code == 202, response.text
    found = get_number(api, number["number"])
    assert (found["alias"], found["reserved"], found["sub_account"]) == (
        "front desk",
        True,
        sub.auth_id,
    )
    # An empty subaccount gives the number back to the main account.
    response = api.request("POST", path, json={"subaccount": "", "reserved": "false"})
    assert response.status_code == 202, response.text
    found = get_number(api, number["number"])
    assert (found["alias"], found["reserved"], found["sub_account"]) == ("front desk", False, None)
    assert_error(
        api.request("POST", api.path(f"Number/{pool_number()[1:]}/"), json={"alias": "x"}),
        404,
        messages.NUMBER_NOT_FOUND,
    )


def test_delete(api: Api) -> None:
    [number] = add(api, {"numbers": pool_number()})
    path = api.path(f"Number/{number['number']}/")
    response = api.request("DELETE", path)
    assert response.status_code == 204
    assert response.content == b""
    assert_error(api.request("GET", path), 404, messages.NUMBER_NOT_FOUND)
    assert_error(api.request("DELETE", path), 404, messages.NUMBER_NOT_FOUND)
    assert listed(api)["meta"]["total_count"] == 0


def test_delete_refused_while_a_session_uses_it(api: Api) -> None:
    [number] = add(api, {"numbers": pool_number()})
    path = api.path(f"Number/{number['number']}/")
    uuid = api.create()["session_uuid"]
    assert_error(api.request("DELETE", path), 400, messages.NUMBER_IN_USE)
    assert get_number(api, number["number"])["number"] == number["number"]

    assert api.request("DELETE", api.path(f"{MASKING}/{uuid}/")).status_code == 200
    response = api.request("DELETE", path)
    assert response.status_code == 204, response.text
    # The expired session outlives its number and still reads back.
    assert api.get(uuid)["status"] == "expired"


def test_number_of_another_account(server: Server, admin: Admin, api: Api) -> None:
    other = admin.create_account()
    [theirs] = admin.add_numbers(other)
    response = api.request("POST", api.path("Number/"), json={"numbers": theirs})
    error = assert_error(response, 400)
    assert theirs[1:] in error
    assert_error(api.request("GET", api.path(f"Number/{theirs[1:]}/")), 404)
    assert_error(api.request("DELETE", api.path(f"Number/{theirs[1:]}/")), 404)
    assert listed(api)["meta"]["total_count"] == 0
    with Api.open(server, other) as as_other:
        assert get_number(as_other, theirs)["number"] == theirs[1:]


@pytest.mark.parametrize("invalid", ["12345", "abc", "+1415", "+999123456789"])
def test_invalid_numbers_are_named(api: Api, invalid: str) -> None:
    good = pool_number()
    response = api.request("POST", api.path("Number/"), json={"numbers": f"{good},{invalid}"})
    assert_error(response, 400, messages.invalid_phone(invalid))
    # All or nothing: the valid one was not added either.
    assert listed(api)["meta"]["total_count"] == 0


def test_add_without_numbers(api: Api) -> None:
    for body in ({}, {"numbers": ""}, {"numbers": " , "}, {"numbers": None}, {"numbers": {}}):
        assert_error(
            api.request("POST", api.path("Number/"), json=body), 400, messages.missing("numbers")
        )


WRONG_VALUES: list[Any] = [[], {"a": 1}, -1, 10**30, True, "ü☎", "\u0000", "x" * 5000]


def test_number_robustness_sweep(api: Api) -> None:
    """No 5xx for any client mistake (plivo-wire.md section 1, rule 8)."""
    [number] = add(api, {"numbers": pool_number()})
    item = api.path(f"Number/{number['number']}/")
    sweep = Sweep()
    for name in ("alias", "reserved", "subaccount", "carrier", "region", "number_type"):
        for value in WRONG_VALUES:
            response = api.request(
                "POST", api.path("Number/"), json={"numbers": pool_number(), name: value}
            )
            sweep.check(response, "add", name, value)
            if name in ("alias", "reserved", "subaccount"):
                sweep.check(api.request("POST", item, json={name: value}), "update", name, value)
    for name in ("alias", "subaccount", "number_startswith", "limit", "offset"):
        for text in ("\u0000", "9" * 5000, str(10**20), "-1", "ü"):
            response = api.request("GET", api.path("Number/"), params={name: text})
            sweep.check(response, "list", name, text)
    for segment in ("%00", "x" * 5000, "%FF", "ü"):
        for method in ("GET", "POST", "DELETE"):
            response = api.request(method, api.path(f"Number/{segment}/"))
            sweep.check(response, method, segment)
    sweep.assert_clean()


def test_numbers_need_credentials(server: Server, account: Account) -> None:
    response = httpx.get(server.url + f"/v1/Account/{account.auth_id}/Number/")
    assert_error(response, 401, messages.AUTH_FAILED)
