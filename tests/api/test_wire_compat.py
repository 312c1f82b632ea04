"""The session API over raw HTTP, as the SDKs other than Python's put it on the wire.

The Python SDK (tests/api/test_sessions_sdk.py) only ever sends one shape of request.
Go, Node, Ruby, Java, PHP and .NET send others: paths without a trailing slash or with a
doubled one, zeros for "unset", strings for numbers, keys in other spellings, bodies on
DELETE (plivo-wire.md sections 1 and 3). Every one of them must work unchanged.

The small ``Api`` helper and ``assert_error`` at the top are shared by the other
tests/api/test_wire_*.py files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account

# ---------------------------------------------------------------------------------------
# Helpers shared by the test_wire_*.py files
# ---------------------------------------------------------------------------------------

MASKING = "Masking/Session"  # the current API (seeds 001, 004)
LEGACY = "Session"  # the legacy API (seeds 000, 002)


class Api:
    """Raw HTTP to one account's ``/v1/Account/{auth_id}/...`` resources."""

    def __init__(self, client: httpx.Client, auth_id: str) -> None:
        self.client = client
        self.auth_id = auth_id

    @classmethod
    @contextmanager
    def open(cls, server: Server, account: Account) -> Iterator[Api]:
        auth = (account.auth_id, account.auth_token)
        with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
            yield cls(client, account.auth_id)

    def path(self, rest: str) -> str:
        return f"/v1/Account/{self.auth_id}/{rest}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        # Several SDKs do not follow redirects on POST/DELETE: a path variant must be
        # answered where it was sent, never with a 3xx (plivo-wire.md section 1, rule 1).
        assert not 300 <= response.status_code < 400, response.headers
        return response

    def raw(self, method: str, raw_path: str, **kwargs: Any) -> httpx.Response:
        """Send ``raw_path`` byte for byte (doubled slashes, a bare ``?``, ``+``)."""
        response = self.request(method, raw_path, **kwargs)
        assert response.request.url.raw_path == raw_path.encode()
        return response

    def create(self, body: dict[str, Any] | None = None, *, api: str = MASKING) -> dict[str, Any]:
        """Create a session between two fresh parties (``body`` adds or overrides keys)."""
        payload = {"first_party": party_number(), "second_party": party_number(), **(body or {})}
        response = self.request("POST", self.path(f"{api}/"), json=payload)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, uuid: str, *, api: str = MASKING) -> dict[str, Any]:
        response = self.request("GET", self.path(f"{api}/{uuid}/"))
        assert response.status_code == 200, response.text
        session: dict[str, Any] = response.json()["response"]
        return session

    def list(self, query: str = "", *, api: str = MASKING) -> dict[str, Any]:
        response = self.request("GET", self.path(f"{api}/") + (f"?{query}" if query else ""))
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()["response"]
        return page


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> str:
    """Plivo's error envelope: ``{"api_id", "error"}`` as JSON, never an empty body (Go
    treats an empty error body as success; plivo-wire.md section 1, rule 8)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"api_id", "error"}, body
    assert isinstance(body["api_id"], str) and body["api_id"]
    assert isinstance(body["error"], str) and body["error"]
    if message is not None:
        assert body["error"] == message
    error: str = body["error"]
    return error


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + f"...({len(text)} chars)"


class Sweep:
    """Collects every case answered with a 5xx or a malformed error, so that one run
    reports all of them rather than the first."""

    def __init__(self) -> None:
        self.faults: list[str] = []

    def check(self, response: httpx.Response, *what: object) -> None:
        status = response.status_code
        case = ", ".join(_short(w) for w in what)
        if status >= 500:
            self.faults.append(f"{case} -> {status}")
        elif status >= 400:
            try:
                assert_error(response, status)
            except (AssertionError, ValueError):
                self.faults.append(f"{case} -> {status} without Plivo's error body")

    def assert_clean(self) -> None:
        assert not self.faults, "\n".join(self.faults)


def plivo_time(text: str) -> datetime:
    """Parse Go's ``time.Time.String()`` as Veil prints it (plivo-wire.md section 6)."""
    stamp = text.removesuffix(" +0000 UTC")
    layout = "%Y-%m-%d %H:%M:%S.%f" if "." in stamp else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(stamp, layout).replace(tzinfo=UTC)


@pytest.fixture
def api(server: Server, account: Account) -> Iterator[Api]:
    with Api.open(server, account) as opened:
        yield opened


# ---------------------------------------------------------------------------------------
# Paths: every slash variant the SDKs send reaches the same route (section 1, rule 1)
# ---------------------------------------------------------------------------------------

# (collection path, item path, GET item path), "{u}" standing for the session uuid.
PATH_STYLES = {
    # Python, Go, Ruby, Java, PHP: a trailing slash everywhere.
    "trailing-slash": ("/", "/{u}/", "/{u}/"),
    # Node: get/update/delete without the slash, GET ending in a bare "?"; the docs'
    # cURL examples leave the slash off the collection too.
    "node-no-slash": ("", "/{u}", "/{u}?"),
    # .NET GetAsync/DeleteAsync: "…/Masking/Session//{uuid}/".
    "dotnet-double-slash": ("/", "//{u}/", "//{u}/"),
}


@pytest.mark.parametrize("api_name", [MASKING, LEGACY])
@pytest.mark.parametrize("style", sorted(PATH_STYLES))
def test_lifecycle_on_every_path_variant(
    api: Api, admin: Admin, account: Account, style: str, api_name: str
) -> None:
    admin.add_numbers(account)
    collection, item, get_item = PATH_STYLES[style]
    base = api.path(api_name)

    created = api.raw(
        "POST",
        base + collection,
        json={"first_party": party_number(), "second_party": party_number()},
    )
    assert created.status_code == 201, created.text
    uuid = created.json()["session_uuid"]

    got = api.raw("GET", base + get_item.format(u=uuid))
    assert got.status_code == 200, got.text
    assert got.json()["response"]["session_uuid"] == uuid

    updated = api.raw("POST", base + item.format(u=uuid), json={"record": True})
    assert updated.status_code == 200, updated.text
    assert updated.json()["message"] == messages.SESSION_UPDATED
    assert updated.json()["session"]["record"] is True

    listed = api.raw("GET", base + collection + "?limit=5")
    assert listed.status_code == 200, listed.text
    assert [o["session_uuid"] for o in listed.json()["response"]["objects"]] == [uuid]

    deleted = api.raw("DELETE", base + item.format(u=uuid))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["message"] == messages.SESSION_EXPIRED
    assert api.get(uuid)["status"] == "expired"
    assert_error(api.raw("DELETE", base + item.format(u=uuid)), 400, messages.ALREADY_EXPIRED)


def test_list_without_slash_and_with_bare_question_mark(api: Api, admin: Admin, account: Account):
    """Node lists on ``…/Masking/Session/?{querystring}``, with an empty query too."""
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    for raw in (api.path(MASKING) + "/?", api.path(MASKING) + "?", api.path(MASKING)):
        response = api.raw("GET", raw)
        assert response.status_code == 200, (raw, response.text)
        assert [o["session_uuid"] for o in response.json()["response"]["objects"]] == [uuid]


# ---------------------------------------------------------------------------------------
# Bodies the other SDKs send (sections 1 and 3)
# ---------------------------------------------------------------------------------------


def _minimal_defaults(api: Api) -> dict[str, Any]:
    """What a session looks like when the client names nothing but the parties."""
    return api.create()["session"]


TIME_ATTRIBUTES = ("duration", "call_time_limit", "ring_timeout")


def test_go_always_sends_session_expiry_zero(api: Api, admin: Admin, account: Account) -> None:
    # Go's CreateMaskingSessionParams tags SessionExpiry without omitempty (section 3.1).
    admin.add_numbers(account)
    reference = _minimal_defaults(api)
    session = api.create({"session_expiry": 0})["session"]
    assert [session[k] for k in TIME_ATTRIBUTES] == [reference[k] for k in TIME_ATTRIBUTES]


def test_go_single_party_key_with_capital_p(api: Api, admin: Admin, account: Account) -> None:
    # Go tags CreateSessionWithSingleParty as "create_session_with_single_Party" (3.1).
    admin.add_numbers(account)
    first = party_number()
    response = api.request(
        "POST",
        api.path(f"{MASKING}/"),
        json={"first_party": first, "session_expiry": 0, "create_session_with_single_Party": True},
    )
    assert response.status_code == 201, response.text
    session = response.json()["session"]
    assert session["create_session_with_single_party"] is True
    assert (session["first_party"], session["second_party"]) == (first[1:], "")


# Java's MaskingSessionCreator has primitive fields, so every create carries them (3.4),
# plus the "pin_authentication_required" Jackson derives from isPinAuthenticationRequired().
JAVA_CREATE_EXTRAS = {
    "initiate_call_to_first_party": False,
    "is_pin_authentication_required": False,
    "pin_authentication_required": False,
    "geomatch": True,
    "generate_pin": False,
    "record": False,
    "create_session_with_single_party": False,
    "force_pin_authentication": False,
    "ring_timeout": 0,
    "session_expiry": 0,
    "call_time_limit": 0,
    "virtual_number_cooloff_period": 0,
}


def test_java_create_zeros_mean_defaults(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    reference = _minimal_defaults(api)
    session = api.create(JAVA_CREATE_EXTRAS)["session"]
    for key in (*TIME_ATTRIBUTES, "geomatch", "record", "is_pin_authentication_required"):
        assert session[key] == reference[key], key
    assert session["virtual_number_cooloff_period"] == 0


def test_java_update_zeros_change_nothing(api: Api, admin: Admin, account: Account) -> None:
    """Java's updater always sends session_expiry, call_time_limit and ring_timeout (0 when
    unset), record and create_session_with_single_party:false (section 3.4)."""
    admin.add_numbers(account)
    created = api.create({"session_expiry": 600, "call_time_limit": 1800, "ring_timeout": 30})
    before = created["session"]
    body = {
        "session_expiry": 0,
        "call_time_limit": 0,
        "ring_timeout": 0,
        "record": True,
        "create_session_with_single_party": False,
    }
    response = api.request("POST", api.path(f"{MASKING}/{created['session_uuid']}/"), json=body)
    assert response.status_code == 200, response.text
    after = response.json()["session"]
    assert after["record"] is True
    for key in ("expiry_time", *TIME_ATTRIBUTES):
        assert after[key] == before[key], key


def test_java_update_of_single_party_session_sends_false(
    api: Api, admin: Admin, account: Account
) -> None:
    # The flag is a create-time choice; Java's "false" on every update must not fail.
    admin.add_numbers(account)
    created = api.create({"second_party": None, "create_session_with_single_party": True})
    response = api.request(
        "POST",
        api.path(f"{MASKING}/{created['session_uuid']}/"),
        json={
            "session_expiry": 0,
            "call_time_limit": 0,
            "ring_timeout": 0,
            "record": False,
            "create_session_with_single_party": False,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["session"]["create_session_with_single_party"] is True


def test_ruby_update_sends_strings(api: Api, admin: Admin, account: Account) -> None:
    # Ruby's update accepts only String/Symbol/boolean values (section 3.3, rule 6).
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    response = api.request(
        "POST",
        api.path(f"{MASKING}/{uuid}/"),
        json={"call_time_limit": "1440", "record": "true", "session_expiry": "600"},
    )
    assert response.status_code == 200, response.text
    session = response.json()["session"]
    assert session["call_time_limit"] == 1440
    assert session["record"] is True
    expiry, modified = plivo_time(session["expiry_time"]), plivo_time(session["modified_time"])
    assert (expiry - modified).total_seconds() == 600


def test_node_geo_match_key(api: Api, admin: Admin, account: Account) -> None:
    """Node's lodash turns geoMatch into geo_match (section 3.2). Only a US number is in the
    pool, so an Indian first party gets it only if geo_match:false was understood."""
    admin.add_numbers(account, country="US")
    indian = {"first_party": party_number("IN"), "second_party": party_number("IN")}
    response = api.request("POST", api.path(f"{MASKING}/"), json=indian)
    assert_error(response, 400, messages.POOL_EXHAUSTED)
    session = api.create({**indian, "geo_match": False})["session"]
    assert session["geomatch"] is False


def test_node_sub_account_key(server: Server, api: Api, admin: Admin, account: Account) -> None:
    # Node's lodash turns subAccount into sub_account (section 3.2).
    sub = admin.create_account(parent=account)
    [number] = admin.add_numbers(account, subaccount=sub)
    created = api.create({"sub_account": sub.auth_id})
    assert created["virtual_number"] == number
    assert created["session"]["subaccount"] == sub.auth_id
    with Api.open(server, sub) as as_sub:
        assert as_sub.get(created["session_uuid"])["session_uuid"] == created["session_uuid"]


def test_python_and_node_send_session_uuid_in_update(
    api: Api, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    response = api.request(
        "POST",
        api.path(f"{MASKING}/{uuid}/"),
        json={"session_uuid": uuid, "call_time_limit": 1800},
    )
    assert response.status_code == 200, response.text
    assert response.json()["session"]["call_time_limit"] == 1800


DELETE_BODIES: dict[str, dict[str, Any]] = {
    "go-ruby-no-body": {},
    "json-type-no-body": {"headers": {"Content-Type": "application/json"}},
    "node-php-empty-object": {"content": b"{}", "headers": {"Content-Type": "application/json"}},
    "python-session-uuid": {"json": {"session_uuid": "{u}"}},
}


@pytest.mark.parametrize("variant", sorted(DELETE_BODIES))
def test_delete_with_each_sdk_body(api: Api, admin: Admin, account: Account, variant: str):
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    kwargs = dict(DELETE_BODIES[variant])
    if "json" in kwargs:
        kwargs["json"] = {"session_uuid": uuid}
    response = api.request("DELETE", api.path(f"{MASKING}/{uuid}/"), **kwargs)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == messages.SESSION_EXPIRED
    assert api.get(uuid)["status"] == "expired"


def test_get_with_json_content_type_and_no_body(api: Api, admin: Admin, account: Account):
    # Every SDK sends Content-Type: application/json on GET too (section 1, rule 3).
    admin.add_numbers(account)
    uuid = api.create()["session_uuid"]
    headers = {"Content-Type": "application/json"}
    for path in (f"{MASKING}/{uuid}/", f"{MASKING}/"):
        response = api.request("GET", api.path(path), headers=headers)
        assert response.status_code == 200, response.text


def test_keys_in_mixed_case(api: Api, admin: Admin, account: Account) -> None:
    # Go's encoding/json matches keys case-insensitively; so does Veil (rule 4).
    admin.add_numbers(account)
    first, second = party_number(), party_number()
    response = api.request(
        "POST",
        api.path(f"{MASKING}/"),
        json={"First_Party": first, "SECOND_PARTY": second, "Session_Expiry": 600, "Record": True},
    )
    assert response.status_code == 201, response.text
    session = response.json()["session"]
    assert (session["first_party"], session["second_party"]) == (first[1:], second[1:])
    assert (session["duration"], session["record"]) == (600, True)

    update = api.request(
        "POST",
        api.path(f"{MASKING}/{session['session_uuid']}/"),
        json={"Call_Time_Limit": 1200, "RECORD": False},
    )
    assert update.status_code == 200, update.text
    assert (update.json()["session"]["call_time_limit"], update.json()["session"]["record"]) == (
        1200,
        False,
    )


def test_unknown_keys_are_ignored(api: Api, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    extras = {"colour": "blue", "nested": {"a": [1, None]}, "session_uuid": "x", "auth_id": 5}
    session = api.create({**extras, "session_expiry": 900})["session"]
    assert session["duration"] == 900
    assert "colour" not in session
    update = api.request(
        "POST", api.path(f"{MASKING}/{session['session_uuid']}/"), json={**extras, "record": True}
    )
    assert update.status_code == 200, update.text
    assert update.json()["session"]["record"] is True


def test_form_encoded_bodies(api: Api, admin: Admin, account: Account) -> None:
    # curl users post forms; every value then arrives as a string.
    admin.add_numbers(account)
    first, second = party_number(), party_number()
    form = {"first_party": first, "second_party": second, "record": "true", "session_expiry": "900"}
    response = api.request("POST", api.path(f"{MASKING}/"), data=form)
    assert response.status_code == 201, response.text
    session = response.json()["session"]
    assert (session["first_party"], session["record"], session["duration"]) == (
        first[1:],
        True,
        900,
    )
    update = api.request(
        "POST", api.path(f"{MASKING}/{session['session_uuid']}/"), data={"call_time_limit": "600"}
    )
    assert update.status_code == 200, update.text
    assert update.json()["session"]["call_time_limit"] == 600
