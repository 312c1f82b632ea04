"""The Infobip-compatible number masking API against a real ``veil serve``, on SQLite and
PostgreSQL: v2 (configurations, credentials) through Infobip's official Python SDK as
shipped, v1 (actions), the numbers listing and the v2 number links with httpx in
Infobip's JSON shapes; Plivo's SDK to hold numbers with masking sessions.

One server per database for the module; every test makes its own accounts and numbers.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from infobip_api_client import ApiClient, Configuration, NumberMaskingApi
from infobip_api_client.exceptions import (
    ApiException,
    BadRequestException,
    ConflictException,
    NotFoundException,
    UnauthorizedException,
)
from infobip_api_client.models.number_masking_credentials_body import (
    NumberMaskingCredentialsBody,
)
from infobip_api_client.models.number_masking_setup_body import NumberMaskingSetupBody
from plivo import exceptions as plivo_exceptions

from tests.api.sdk_support import create, expire_by_time, plivo_error, sdk_client
from tests.servers import BACKENDS, Server, database, veil_server
from tests.utils import Admin, LoopThread
from veil.domain import infobip as rules
from veil.domain import messages
from veil.domain.accounts import Account

KEY = re.compile(r"[0-9A-F]{32}")


@pytest.fixture(scope="module", params=BACKENDS)
def ib_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with database(request.param, tmp_path_factory.mktemp("infobip-api")) as url:
        yield url


@pytest.fixture(scope="module")
def ib_server(ib_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir: Path = tmp_path_factory.mktemp("infobip-server")
    with veil_server(ib_url, workdir, VEIL_SIP_LISTEN="off") as running:
        yield running


@pytest.fixture(scope="module")
def ib_admin(ib_url: str, loop_thread: LoopThread) -> Iterator[Admin]:
    helper = Admin(ib_url, loop_thread)
    yield helper
    helper.close()


@pytest.fixture
def account(ib_admin: Admin) -> Account:
    return ib_admin.create_account("Infobip")


def masking_api(server: Server, account: Account) -> NumberMaskingApi:
    """The official SDK with the account's token as its API key ("App <key>")."""
    return NumberMaskingApi(ApiClient(Configuration(host=server.url, api_key=account.auth_token)))


@pytest.fixture
def api(ib_server: Server, account: Account) -> NumberMaskingApi:
    return masking_api(ib_server, account)


class Http:
    """httpx against the server as one account, for the paths the SDK does not cover."""

    def __init__(self, server: Server, account: Account) -> None:
        self.url = server.url
        self.headers = {"Authorization": f"App {account.auth_token}"}

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, self.url + path, json=body, headers=self.headers, timeout=10, **kwargs
        )

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request(method, path, body, **kwargs)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return response.json()


@pytest.fixture
def http(ib_server: Server, account: Account) -> Http:
    return Http(ib_server, account)


def error_body(message_id: str, text: str) -> dict[str, Any]:
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}


def assert_error(response: httpx.Response, status: int, message_id: str, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == error_body(message_id, text)


@contextlib.contextmanager
def sdk_error(
    exc_type: type[ApiException], status: int, message_id: str, text: str
) -> Iterator[None]:
    """The block raises the SDK's ``exc_type`` from Veil's Infobip-shaped error body."""
    with pytest.raises(exc_type) as info:
        yield
    exc = info.value
    assert exc.status == status
    assert json.loads(exc.body) == error_body(message_id, text)
    if exc.data is not None:  # parsed where the SDK declares the status (not every 409)
        details = exc.data.request_error.service_exception
        assert (details.message_id, details.text) == (message_id, text)


def number_keys(http: Http) -> dict[str, str]:
    """number (digits) -> numberKey, from the numbers listing."""
    listed = http.ok("GET", "/numbers/1/numbers", params={"limit": 1000})
    return {n["number"]: n["numberKey"] for n in listed["numbers"]}


def setup_body(name: str, **fields: Any) -> NumberMaskingSetupBody:
    fields.setdefault("callback_url", "http://127.0.0.1:9/callback")
    return NumberMaskingSetupBody(name=name, **fields)


# v2 configurations, through the official SDK ------------------------------------------------


def test_configuration_lifecycle(api: NumberMaskingApi) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = api.create_number_masking_configuration(
        setup_body(
            "Rides 1",
            callback_url="https://example.com/cb",
            status_url="https://example.com/status",
            backup_callback_url="https://backup.example.com/cb",
            description="For drivers",
        )
    )
    assert KEY.fullmatch(created.key)
    assert (created.name, created.callback_url, created.status_url) == (
        "Rides 1",
        "https://example.com/cb",
        "https://example.com/status",
    )
    assert created.backup_callback_url == "https://backup.example.com/cb"
    assert created.backup_status_url is None and created.description == "For drivers"
    assert created.insert_date_time.utcoffset() == timedelta(0)
    assert before <= created.insert_date_time <= datetime.now(UTC) + timedelta(seconds=5)
    assert created.update_date_time == created.insert_date_time

    assert api.get_number_masking_configuration(created.key) == created
    other = api.create_number_masking_configuration(setup_body("Rides 2"))
    assert [c.key for c in api.get_number_masking_configurations()] == [created.key, other.key]

    # PUT replaces every field: what the body leaves out is gone.
    updated = api.update_number_masking_configuration(
        created.key, setup_body("Rides one", callback_url="https://example.com/cb2")
    )
    assert (updated.key, updated.name, updated.callback_url) == (
        created.key,
        "Rides one",
        "https://example.com/cb2",
    )
    assert updated.status_url is None and updated.backup_callback_url is None
    assert updated.description is None
    assert updated.insert_date_time == created.insert_date_time
    assert updated.update_date_time >= created.update_date_time
    assert api.get_number_masking_configuration(created.key) == updated

    assert api.delete_number_masking_configuration(created.key) is None
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CONFIG_NOT_FOUND):
        api.get_number_masking_configuration(created.key)
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CONFIG_NOT_FOUND):
        api.delete_number_masking_configuration(created.key)
    assert [c.key for c in api.get_number_masking_configurations()] == [other.key]


def test_configuration_validation(api: NumberMaskingApi, http: Http) -> None:
    # The SDK checks its name pattern with re.match, so a name that only starts well
    # gets through to Veil, which checks all of it.
    with sdk_error(
        BadRequestException,
        400,
        "BAD_REQUEST",
        "[name : must be alphanumeric, at most 100 characters]",
    ):
        api.create_number_masking_configuration(setup_body("Rides!"))
    with sdk_error(
        BadRequestException, 400, "BAD_REQUEST", "[callbackUrl : must be a valid http or https URL]"
    ):
        api.create_number_masking_configuration(setup_body("Rides", callback_url="ftp://x/cb"))
    with sdk_error(
        BadRequestException, 400, "BAD_REQUEST", "[statusUrl : must be a valid http or https URL]"
    ):
        api.create_number_masking_configuration(setup_body("Rides", status_url="status"))

    # What the SDK would not send.
    assert_error(
        http.request("POST", "/voice/masking/2/config", {}),
        400,
        "BAD_REQUEST",
        "[name : may not be empty]",
    )
    assert_error(
        http.request("POST", "/voice/masking/2/config", {"name": "Rides"}),
        400,
        "BAD_REQUEST",
        "[callbackUrl : may not be empty]",
    )
    assert_error(
        http.request("POST", "/voice/masking/2/config", content=b"name=Rides"),
        400,
        "BAD_REQUEST",
        rules.INVALID_BODY,
    )
    assert_error(
        http.request("POST", "/voice/masking/2/config", ["not", "an", "object"]),
        400,
        "BAD_REQUEST",
        rules.INVALID_BODY,
    )
    assert api.get_number_masking_configurations() == []


def test_configuration_names_are_unique_per_account(
    api: NumberMaskingApi, ib_server: Server, ib_admin: Admin
) -> None:
    first = api.create_number_masking_configuration(setup_body("Deliveries"))
    second = api.create_number_masking_configuration(setup_body("Returns"))
    with sdk_error(ConflictException, 409, "CONFLICT", rules.NAME_TAKEN):
        api.create_number_masking_configuration(setup_body("Deliveries"))
    with sdk_error(ConflictException, 409, "CONFLICT", rules.NAME_TAKEN):
        api.update_number_masking_configuration(second.key, setup_body("Deliveries"))
    # Keeping its own name is no conflict; another account may use the name too.
    api.update_number_masking_configuration(first.key, setup_body("Deliveries"))
    other = masking_api(ib_server, ib_admin.create_account("Other"))
    assert other.create_number_masking_configuration(setup_body("Deliveries")).key != first.key


# credentials -------------------------------------------------------------------------------


def test_credentials_lifecycle(api: NumberMaskingApi) -> None:
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CREDENTIALS_NOT_FOUND):
        api.get_number_masking_credentials()
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CREDENTIALS_NOT_FOUND):
        api.update_number_masking_credentials(NumberMaskingCredentialsBody(api_id="a", key="b"))

    created = api.create_number_masking_credentials(
        NumberMaskingCredentialsBody(api_id="app-1", key="s3cret")
    )
    assert (created.api_id, created.key) == ("app-1", "s3cret")
    with sdk_error(ConflictException, 409, "CONFLICT", rules.CREDENTIALS_EXIST):
        api.create_number_masking_credentials(NumberMaskingCredentialsBody(api_id="x", key="y"))
    assert api.get_number_masking_credentials() == created

    updated = api.update_number_masking_credentials(
        NumberMaskingCredentialsBody(api_id="app-2", key="n3w")
    )
    assert (updated.api_id, updated.key) == ("app-2", "n3w")
    assert api.get_number_masking_credentials() == updated

    assert api.delete_number_masking_credentials() is None
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CREDENTIALS_NOT_FOUND):
        api.get_number_masking_credentials()
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CREDENTIALS_NOT_FOUND):
        api.delete_number_masking_credentials()


def test_credentials_validation(http: Http) -> None:
    assert_error(
        http.request("POST", "/voice/masking/2/credentials", {"apiId": "a"}),
        400,
        "BAD_REQUEST",
        "[key : may not be empty]",
    )
    response = http.request("DELETE", "/voice/masking/2/credentials")
    assert_error(response, 404, "NOT_FOUND", rules.CREDENTIALS_NOT_FOUND)


# authentication ----------------------------------------------------------------------------


def test_basic_and_app_authentication(ib_server: Server, ib_admin: Admin, account: Account) -> None:
    by_key = masking_api(ib_server, account)
    made = by_key.create_number_masking_configuration(setup_body("Auth"))

    # The SDK takes username and password but only ever sends its API key header, so
    # Basic goes in as a default header built by its own Configuration.
    config = Configuration(
        host=ib_server.url, username=account.auth_id, password=account.auth_token
    )
    client = ApiClient(config)
    client.set_default_header("Authorization", config.get_basic_auth_token())
    assert NumberMaskingApi(client).get_number_masking_configuration(made.key) == made

    unauthorized = (UnauthorizedException, 401, "UNAUTHORIZED", rules.INVALID_LOGIN)
    wrong_key = ApiClient(Configuration(host=ib_server.url, api_key="x" * 40))
    with sdk_error(*unauthorized):
        NumberMaskingApi(wrong_key).get_number_masking_configurations()
    # Another account's auth_id with this account's token is no login either.
    stranger = ib_admin.create_account("Stranger")
    mixed = Configuration(
        host=ib_server.url, username=stranger.auth_id, password=account.auth_token
    )
    mixed_client = ApiClient(mixed)
    mixed_client.set_default_header("Authorization", mixed.get_basic_auth_token())
    with sdk_error(*unauthorized):
        NumberMaskingApi(mixed_client).get_number_masking_configurations()

    wrong_password = Configuration(host=ib_server.url, username=account.auth_id, password="nope")
    wrong = ApiClient(wrong_password)
    wrong.set_default_header("Authorization", wrong_password.get_basic_auth_token())
    with sdk_error(*unauthorized):
        NumberMaskingApi(wrong).get_number_masking_configurations()

    url = ib_server.url + "/voice/masking/2/config"
    for headers in (
        {},
        {"Authorization": "App"},
        {"Authorization": "Bearer " + account.auth_token},
        {"Authorization": "IBSSO " + account.auth_token},
        {"Authorization": "App " + "y" * 500},
    ):
        assert_error(httpx.get(url, headers=headers), 401, "UNAUTHORIZED", rules.INVALID_LOGIN)
    # Not even a route leaks without credentials; the Plivo API keeps its own shape.
    assert_error(
        httpx.get(ib_server.url + "/numbers/1/nothing"), 404, "NOT_FOUND", "Resource not found."
    )
    plivo = httpx.get(ib_server.url + "/v1/Account/MA0000/Nothing/")
    assert plivo.status_code == 404 and set(plivo.json()) == {"api_id", "error"}


def test_a_disabled_account_is_refused(
    ib_server: Server, ib_admin: Admin, account: Account
) -> None:
    sub = ib_admin.create_account("Sub", parent=account)
    # Disabled before either authenticates (the authenticator remembers an account for
    # a few seconds): the main account, and with it its subaccount.
    ib_admin.sql("UPDATE accounts SET enabled = false WHERE id = :id", id=account.id)
    for who in (account, sub):
        with sdk_error(UnauthorizedException, 401, "UNAUTHORIZED", rules.INVALID_LOGIN):
            masking_api(ib_server, who).get_number_masking_configurations()


# v1 actions and the numbers listing ---------------------------------------------------------


def test_numbers_listing(http: Http, ib_admin: Admin, account: Account) -> None:
    added = ib_admin.add_numbers(account, 3)
    listed = http.ok("GET", "/numbers/1/numbers")
    assert listed["numberCount"] == 3
    numbers = listed["numbers"]
    assert [n["number"] for n in numbers] == [
        e.lstrip("+") for e in reversed(added)
    ]  # newest first
    for number in numbers:
        assert KEY.fullmatch(number["numberKey"])
        assert number == {
            "numberKey": number["numberKey"],
            "number": number["number"],
            "country": "US",
            "capabilities": ["VOICE"],
            "shared": False,
            "maskingConfigKey": None,
        }
        assert http.ok("GET", f"/numbers/1/numbers/{number['numberKey']}") == number

    page = http.ok("GET", "/numbers/1/numbers", params={"limit": 2, "page": 1})
    assert page == {"numbers": numbers[2:], "numberCount": 3}
    for params, text in (
        ({"limit": 0}, "[limit : must be a whole number between 1 and 1000]"),
        ({"limit": "many"}, "[limit : must be a whole number between 1 and 1000]"),
        ({"page": -1}, "[page : must be a whole number between 0 and 1000000]"),
    ):
        response = http.request("GET", "/numbers/1/numbers", params=params)
        assert_error(response, 400, "BAD_REQUEST", text)
    missing = http.request("GET", "/numbers/1/numbers/" + "0" * 32)
    assert_error(missing, 404, "NOT_FOUND", rules.NUMBER_NOT_FOUND)


def test_action_lifecycle(http: Http, ib_admin: Admin, account: Account) -> None:
    (number,) = ib_admin.add_numbers(account, 1)
    key = number_keys(http)[number.lstrip("+")]
    actions = f"/numbers/1/numbers/{key}/actions"
    assert http.ok("GET", actions) == {"actions": []}

    body = {
        "type": "VOICE_NUMBER_MASKING",
        "callbackUrl": "http://client.example/1/callback",
        "statusUrl": "http://client.example/1/status",
    }
    action = http.ok("POST", actions, body)
    assert KEY.fullmatch(action["actionKey"]) and action["actionKey"] != key
    assert action == {"actionKey": action["actionKey"], **body}
    assert http.ok("GET", actions) == {"actions": [action]}
    assert http.ok("GET", f"{actions}/{action['actionKey']}") == action
    listed = http.ok("GET", f"/numbers/1/numbers/{key}")
    assert listed["maskingConfigKey"] == action["actionKey"]

    # One owner per number.
    assert_error(http.request("POST", actions, body), 409, "CONFLICT", rules.NUMBER_OWNED)

    deleted = http.request("DELETE", f"{actions}/{action['actionKey']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert http.ok("GET", actions) == {"actions": []}
    assert http.ok("GET", f"/numbers/1/numbers/{key}")["maskingConfigKey"] is None
    again = http.request("DELETE", f"{actions}/{action['actionKey']}")
    assert_error(again, 404, "NOT_FOUND", rules.ACTION_NOT_FOUND)

    # Without statusUrl; and the spec example's singular path.
    bare = http.ok("POST", f"/numbers/1/numbers/{key}/action", {**body, "statusUrl": None})
    assert bare["statusUrl"] is None


def test_action_validation(http: Http, ib_admin: Admin, account: Account) -> None:
    (number,) = ib_admin.add_numbers(account, 1)
    actions = f"/numbers/1/numbers/{number_keys(http)[number.lstrip('+')]}/actions"
    for body, text in (
        ({"callbackUrl": "http://a.example/cb"}, "[type : must be VOICE_NUMBER_MASKING]"),
        ({"type": "VOICE_NUMBER_MASKING"}, "[callbackUrl : may not be empty]"),
        (
            {"type": "VOICE_NUMBER_MASKING", "callbackUrl": "http://a.example/cb", "statusUrl": 5},
            "[statusUrl : must be a string]",
        ),
    ):
        assert_error(http.request("POST", actions, body), 400, "BAD_REQUEST", text)
    unknown = http.request(
        "POST",
        "/numbers/1/numbers/" + "0" * 32 + "/actions",
        {"type": "VOICE_NUMBER_MASKING", "callbackUrl": "http://a.example/cb"},
    )
    assert_error(unknown, 404, "NOT_FOUND", rules.NUMBER_NOT_FOUND)
    wrong_method = http.request("PATCH", actions, {})
    assert_error(wrong_method, 405, "METHOD_NOT_ALLOWED", "Method not allowed for this resource.")


# v2 number links ---------------------------------------------------------------------------


def test_linking_numbers_to_a_configuration(
    api: NumberMaskingApi, http: Http, ib_admin: Admin, account: Account
) -> None:
    first, second, third = ib_admin.add_numbers(account, 3)
    keys = number_keys(http)
    config = api.create_number_masking_configuration(setup_body("Linked"))
    other = api.create_number_masking_configuration(setup_body("Other"))
    path = f"/voice/masking/2/config/{config.key}/numbers"
    assert http.ok("GET", path) == {"numbers": []}

    linked = http.ok("POST", path, {"numbers": [first]})  # E.164 with +
    entry = {"numberKey": keys[first[1:]], "number": first[1:]}
    assert linked == {"numbers": [entry]}
    # By numberKey, and again by number without + (already linked: kept).
    linked = http.ok("POST", path, {"numbers": [first[1:]], "numberKeys": [keys[second[1:]]]})
    both = [entry, {"numberKey": keys[second[1:]], "number": second[1:]}]
    assert linked == {"numbers": both}
    assert http.ok("GET", path) == {"numbers": both}
    assert http.ok("GET", f"/numbers/1/numbers/{keys[first[1:]]}")["maskingConfigKey"] == (
        config.key
    )

    # All or nothing: third is free, first belongs to config.
    taken = http.request(
        "POST", f"/voice/masking/2/config/{other.key}/numbers", {"numbers": [third, first]}
    )
    assert_error(taken, 409, "CONFLICT", rules.NUMBER_OWNED)
    assert http.ok("GET", f"/voice/masking/2/config/{other.key}/numbers") == {"numbers": []}
    # A v1 action cannot take a configuration's number either.
    action = http.request(
        "POST",
        f"/numbers/1/numbers/{keys[first[1:]]}/actions",
        {"type": "VOICE_NUMBER_MASKING", "callbackUrl": "http://a.example/cb"},
    )
    assert_error(action, 409, "CONFLICT", rules.NUMBER_OWNED)

    for body, status, message_id, text in (
        ({}, 400, "BAD_REQUEST", "[numbers : may not be empty]"),
        (
            {"numbers": ["12345"]},
            400,
            "BAD_REQUEST",
            "[numbers : 12345 is not a valid phone number]",
        ),
        ({"numbers": {"a": 1}}, 400, "BAD_REQUEST", "[numbers : must be a list of strings]"),
        ({"numbers": ["+14155550199"]}, 404, "NOT_FOUND", "Number 14155550199 not found."),
        ({"numberKeys": ["F" * 32]}, 404, "NOT_FOUND", rules.NUMBER_NOT_FOUND),
    ):
        assert_error(http.request("POST", path, body), status, message_id, text)

    unlinked = http.request("DELETE", f"{path}/{keys[first[1:]]}")
    assert unlinked.status_code == 204 and unlinked.content == b""
    assert http.ok("GET", path) == {"numbers": both[1:]}
    again = http.request("DELETE", f"{path}/{keys[first[1:]]}")
    assert_error(again, 404, "NOT_FOUND", rules.NUMBER_NOT_LINKED)

    # Deleting the configuration gives its numbers back to the pool.
    api.delete_number_masking_configuration(config.key)
    assert http.ok("GET", f"/numbers/1/numbers/{keys[second[1:]]}")["maskingConfigKey"] is None
    gone = http.request("GET", path)
    assert_error(gone, 404, "NOT_FOUND", rules.CONFIG_NOT_FOUND)


# ownership against masking sessions ----------------------------------------------------------


def test_a_number_held_by_a_session_cannot_be_given_away(
    ib_server: Server, api: NumberMaskingApi, http: Http, ib_admin: Admin, account: Account
) -> None:
    (number,) = ib_admin.add_numbers(account, 1)
    key = number_keys(http)[number[1:]]
    session = create(sdk_client(ib_server.url, account))
    assert session.virtual_number.lstrip("+") == number[1:]

    config = api.create_number_masking_configuration(setup_body("Busy"))
    linked = http.request(
        "POST", f"/voice/masking/2/config/{config.key}/numbers", {"numberKeys": [key]}
    )
    assert_error(linked, 409, "CONFLICT", rules.NUMBER_IN_SESSIONS)
    action = http.request(
        "POST",
        f"/numbers/1/numbers/{key}/actions",
        {"type": "VOICE_NUMBER_MASKING", "callbackUrl": "http://a.example/cb"},
    )
    assert_error(action, 409, "CONFLICT", rules.NUMBER_IN_SESSIONS)

    # Once the session is over and its cool-off has passed, the number is free.
    expire_by_time(ib_admin, session.session_uuid)
    linked = http.request(
        "POST", f"/voice/masking/2/config/{config.key}/numbers", {"numberKeys": [key]}
    )
    assert linked.status_code == 200, linked.text


def test_a_configured_number_serves_no_sessions_until_released(
    ib_server: Server, api: NumberMaskingApi, http: Http, ib_admin: Admin, account: Account
) -> None:
    (number,) = ib_admin.add_numbers(account, 1)
    config = api.create_number_masking_configuration(setup_body("Owned"))
    http.ok("POST", f"/voice/masking/2/config/{config.key}/numbers", {"numbers": [number]})

    plivo = sdk_client(ib_server.url, account)
    with plivo_error(plivo, plivo_exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(plivo)

    api.delete_number_masking_configuration(config.key)
    session = create(plivo)
    assert session.virtual_number.lstrip("+") == number[1:]


# isolation ---------------------------------------------------------------------------------


def test_accounts_never_see_each_other(
    ib_server: Server, api: NumberMaskingApi, http: Http, ib_admin: Admin, account: Account
) -> None:
    mine, theirs = ib_admin.add_numbers(account, 1)[0], None
    other = ib_admin.create_account("Other")
    (theirs,) = ib_admin.add_numbers(other, 1)
    other_http = Http(ib_server, other)
    other_api = masking_api(ib_server, other)
    my_key = number_keys(http)[mine[1:]]
    their_key = number_keys(other_http)[theirs[1:]]
    assert set(number_keys(http)) == {mine[1:]}

    config = api.create_number_masking_configuration(setup_body("Mine"))
    action = http.ok(
        "POST",
        f"/numbers/1/numbers/{my_key}/actions",
        {"type": "VOICE_NUMBER_MASKING", "callbackUrl": "http://a.example/cb"},
    )
    api.create_number_masking_credentials(NumberMaskingCredentialsBody(api_id="a", key="b"))

    not_found = (NotFoundException, 404, "NOT_FOUND")
    with sdk_error(*not_found, rules.CONFIG_NOT_FOUND):
        other_api.get_number_masking_configuration(config.key)
    with sdk_error(*not_found, rules.CONFIG_NOT_FOUND):
        other_api.update_number_masking_configuration(config.key, setup_body("Theirs"))
    with sdk_error(*not_found, rules.CONFIG_NOT_FOUND):
        other_api.delete_number_masking_configuration(config.key)
    with sdk_error(*not_found, rules.CREDENTIALS_NOT_FOUND):
        other_api.get_number_masking_credentials()
    assert other_api.get_number_masking_configurations() == []

    for method, path, body in (
        ("GET", f"/numbers/1/numbers/{my_key}", None),
        ("GET", f"/numbers/1/numbers/{my_key}/actions", None),
        ("GET", f"/numbers/1/numbers/{my_key}/actions/{action['actionKey']}", None),
        ("DELETE", f"/numbers/1/numbers/{my_key}/actions/{action['actionKey']}", None),
    ):
        response = other_http.request(method, path, body)
        assert_error(response, 404, "NOT_FOUND", rules.NUMBER_NOT_FOUND)
    for method, path, body in (
        ("GET", f"/voice/masking/2/config/{config.key}/numbers", None),
        ("POST", f"/voice/masking/2/config/{config.key}/numbers", {"numberKeys": [their_key]}),
        ("DELETE", f"/voice/masking/2/config/{config.key}/numbers/{my_key}", None),
    ):
        response = other_http.request(method, path, body)
        assert_error(response, 404, "NOT_FOUND", rules.CONFIG_NOT_FOUND)
    # Nor can one give the other's number to its own configuration.
    taken = http.request(
        "POST", f"/voice/masking/2/config/{config.key}/numbers", {"numberKeys": [their_key]}
    )
    assert_error(taken, 404, "NOT_FOUND", rules.NUMBER_NOT_FOUND)
    by_number = http.request(
        "POST", f"/voice/masking/2/config/{config.key}/numbers", {"numbers": [theirs]}
    )
    assert_error(by_number, 404, "NOT_FOUND", f"Number {theirs[1:]} not found.")
    assert api.get_number_masking_configuration(config.key) == config


def test_subaccounts_have_their_own_configurations(
    ib_server: Server, api: NumberMaskingApi, http: Http, ib_admin: Admin, account: Account
) -> None:
    sub = ib_admin.create_account("Sub", parent=account)
    (main_number,) = ib_admin.add_numbers(account, 1)
    (sub_number,) = ib_admin.add_numbers(account, 1, subaccount=sub)
    sub_http = Http(ib_server, sub)
    sub_api = masking_api(ib_server, sub)
    # The main account sees its tree's numbers; the subaccount only its own.
    assert set(number_keys(http)) == {main_number[1:], sub_number[1:]}
    assert set(number_keys(sub_http)) == {sub_number[1:]}

    theirs = sub_api.create_number_masking_configuration(setup_body("Same name"))
    ours = api.create_number_masking_configuration(setup_body("Same name"))
    sub_http.ok("POST", f"/voice/masking/2/config/{theirs.key}/numbers", {"numbers": [sub_number]})
    assert [c.key for c in sub_api.get_number_masking_configurations()] == [theirs.key]
    assert [c.key for c in api.get_number_masking_configurations()] == [ours.key]
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CONFIG_NOT_FOUND):
        api.get_number_masking_configuration(theirs.key)
    with sdk_error(NotFoundException, 404, "NOT_FOUND", rules.CONFIG_NOT_FOUND):
        sub_api.get_number_masking_configuration(ours.key)
    # The main account sees that the subaccount's configuration has the number, and
    # cannot take it for its own.
    sub_key = number_keys(http)[sub_number[1:]]
    assert http.ok("GET", f"/numbers/1/numbers/{sub_key}")["maskingConfigKey"] == theirs.key
    taken = http.request(
        "POST", f"/voice/masking/2/config/{ours.key}/numbers", {"numberKeys": [sub_key]}
    )
    assert_error(taken, 409, "CONFLICT", rules.NUMBER_OWNED)
