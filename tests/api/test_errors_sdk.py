"""Every error of seed 002's list reached through Plivo's official Python SDK.

The SDK turns a status code into an exception class (400 -> ValidationError, 401 ->
AuthenticationError, 404 -> ResourceNotFoundError; plivo-wire.md section 2.5) and uses
the body's ``error`` as its message. ``plivo_error`` checks all three: class, message and
the status code on the wire. Expected messages come from veil.domain.messages; the first
test pins those constants to Plivo's literal wording once.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import plivo
import pytest
from plivo import exceptions

from tests.api.sdk_support import (
    create,
    expire_by_time,
    fields,
    plivo_error,
    response_log,
    sdk_client,
)
from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account


@pytest.fixture
def pooled(admin: Admin, account: Account) -> Account:
    """The test's account with one US number, so that a create fails only on its arguments."""
    admin.add_numbers(account)
    return account


# --- the wording ---------------------------------------------------------------------------


# Seed 002's "API response codes", typed here once as the seed has them. Success messages
# are compared without the seed's trailing period: Plivo's real bodies have none
# (plivo-wire.md section 9).
@pytest.mark.parametrize(
    ("constant", "plivo_text"),
    [
        (messages.SESSION_CREATED, "Session created"),
        (messages.SESSION_UPDATED, "Session updated"),
        (messages.SESSION_EXPIRED, "Session expired"),
        (messages.ALREADY_EXPIRED, "Session already expired."),
        (messages.POOL_EXHAUSTED, "Number pool exhausted or not available."),
        (
            messages.invalid_phone("first_party"),
            "Invalid parameter. first_party is not a valid phone number.",
        ),
        (
            messages.invalid_phone("second_party"),
            "Invalid parameter. second_party is not a valid phone number.",
        ),
        (
            messages.missing("first_party"),
            "Mandatory parameter missing. first_party must be present.",
        ),
        (
            messages.missing("second_party"),
            "Mandatory parameter missing. second_party must be present.",
        ),
        (
            messages.out_of_range("session_expiry"),
            "Invalid parameter. session_expiry is outside the allowed range.",
        ),
        (
            messages.out_of_range("call_time_limit"),
            "Invalid parameter. call_time_limit is outside the allowed range.",
        ),
        (
            messages.not_boolean("record"),
            "Invalid parameter. record allowed values are true or false.",
        ),
        (
            messages.RECORD_FILE_FORMAT,
            "Invalid parameter. record_file_format allowed values are mp3 or wav.",
        ),
        (
            messages.not_url("recording_callback_url"),
            "Invalid parameter. recording_callback_url should be a valid URL.",
        ),
        (
            messages.url_too_long("recording_callback_url"),
            "Invalid parameter. recording_callback_url should be under 1000 characters.",
        ),
        (messages.INTERNAL_ERROR, "Internal server error."),
    ],
)
def test_documented_messages_are_plivos_words(constant: str, plivo_text: str) -> None:
    assert constant == plivo_text


# --- parties -------------------------------------------------------------------------------

INVALID_NUMBERS = [
    "12345",  # far too short
    "+1415555",  # too short for the US
    "+99912345678",  # no such country code
    "not-a-number",
    "+1 (415) 555-01x0",  # a letter among the separators
]


@pytest.mark.parametrize("name", ["first_party", "second_party"])
@pytest.mark.parametrize("value", INVALID_NUMBERS)
def test_invalid_party_number(
    client: plivo.RestClient, pooled: Account, name: str, value: str
) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, messages.invalid_phone(name)):
        create(client, **{name: value})
    assert client.masking_sessions.list_masking_session().response.meta.total_count == 0


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"second_party": "<party>"}, "first_party"),
        ({"first_party": "", "second_party": "<party>"}, "first_party"),
        ({"first_party": "<party>"}, "second_party"),
        ({"first_party": "<party>", "second_party": ""}, "second_party"),
        ({}, "first_party"),  # both missing: the first one is named
        ({"session_expiry": 600}, "first_party"),
    ],
)
def test_missing_party(
    client: plivo.RestClient, pooled: Account, given: dict[str, Any], missing: str
) -> None:
    args = {k: party_number() if v == "<party>" else v for k, v in given.items()}
    with plivo_error(client, exceptions.ValidationError, 400, messages.missing(missing)):
        client.masking_sessions.create_masking_session(**args)


def test_an_invalid_party_is_reported_before_a_missing_one(
    client: plivo.RestClient, pooled: Account
) -> None:
    # Checks run in the order of seed 002's list: "not a valid phone number" comes before
    # "must be present", so the invalid second party is named, not the missing first.
    with plivo_error(
        client, exceptions.ValidationError, 400, messages.invalid_phone("second_party")
    ):
        client.masking_sessions.create_masking_session(second_party="12")


def test_the_same_number_for_both_parties(client: plivo.RestClient, pooled: Account) -> None:
    party = party_number()
    with plivo_error(client, exceptions.ValidationError, 400, messages.SAME_PARTY):
        create(client, first_party=party, second_party=party[1:])


def test_single_party_session_needs_one_party(client: plivo.RestClient, pooled: Account) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, messages.ONE_PARTY_MISSING):
        client.masking_sessions.create_masking_session(create_session_with_single_party=True)


# --- ranges --------------------------------------------------------------------------------


# Seed 001/000: session_expiry and call_time_limit are 60..86400 seconds. 0 is not in the
# list: it means "use the default" (plivo-wire.md section 1, rule 5).
@pytest.mark.parametrize("name", ["session_expiry", "call_time_limit"])
@pytest.mark.parametrize("value", [59, 86401, -1, -60, 10**9])
def test_time_out_of_range_on_create(
    client: plivo.RestClient, pooled: Account, name: str, value: int
) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, messages.out_of_range(name)):
        create(client, **{name: value})


@pytest.mark.parametrize("name", ["session_expiry", "call_time_limit"])
@pytest.mark.parametrize("value", [60, 86400, "86400"])
def test_time_at_the_range_ends_is_accepted(
    client: plivo.RestClient, pooled: Account, name: str, value: int | str
) -> None:
    session = create(client, **{name: value}).session
    assert (session.duration if name == "session_expiry" else session.call_time_limit) == int(value)


@pytest.mark.parametrize("name", ["session_expiry", "call_time_limit"])
@pytest.mark.parametrize("value", [59, 86401])
def test_time_out_of_range_on_update(
    client: plivo.RestClient, pooled: Account, name: str, value: int
) -> None:
    created = create(client)
    with plivo_error(client, exceptions.ValidationError, 400, messages.out_of_range(name)):
        client.masking_sessions.update_masking_session(created.session_uuid, **{name: value})
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert fields(got) == fields(created.session)


# --- recording -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["maybe", "yes", "truee", "tru"])
def test_record_not_true_or_false(client: plivo.RestClient, pooled: Account, value: Any) -> None:
    # The SDK passes values through untouched (it validates URLs only).
    with plivo_error(client, exceptions.ValidationError, 400, messages.not_boolean("record")):
        create(client, record=value)
    created = create(client)
    with plivo_error(client, exceptions.ValidationError, 400, messages.not_boolean("record")):
        client.masking_sessions.update_masking_session(created.session_uuid, record=value)


@pytest.mark.parametrize("value", ["ogg", "mp4", "wave", "mp33", "m p3"])
def test_record_file_format_not_mp3_or_wav(
    client: plivo.RestClient, pooled: Account, value: str
) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, messages.RECORD_FILE_FORMAT):
        create(client, record=True, record_file_format=value)
    created = create(client)
    with plivo_error(client, exceptions.ValidationError, 400, messages.RECORD_FILE_FORMAT):
        client.masking_sessions.update_masking_session(
            created.session_uuid, record_file_format=value
        )


# URLs that the SDK's own create-time check lets through (its regex is anchored at the
# start only, plivo-wire.md section 2.3) but that are not URLs a server could post to.
BAD_URLS_THE_SDK_SENDS = [
    "https://exa mple.com/recording",  # a space in the host
    "http://:8080/recording",  # no host
    "https://example.com:99999/recording",  # no such port
    "http://example.com/recording\tx",  # whitespace in the path
    "https://example.com/\x07recording",  # a control character (BEL)
    "https://example.com/recording\x1b[0m",  # an escape sequence
]
# update_masking_session validates nothing, so anything reaches Veil.
BAD_URLS_ON_UPDATE = [
    *BAD_URLS_THE_SDK_SENDS,
    "not a url",
    "example.com/recording",  # no scheme
    "ftp://example.com/recording",
    "https://",
]


@pytest.mark.parametrize("url", BAD_URLS_THE_SDK_SENDS)
def test_recording_callback_url_invalid_on_create(
    client: plivo.RestClient, pooled: Account, url: str
) -> None:
    message = messages.not_url("recording_callback_url")
    with plivo_error(client, exceptions.ValidationError, 400, message):
        create(client, recording_callback_url=url)


@pytest.mark.parametrize("url", BAD_URLS_ON_UPDATE)
def test_recording_callback_url_invalid_on_update(
    client: plivo.RestClient, pooled: Account, url: str
) -> None:
    created = create(client)
    message = messages.not_url("recording_callback_url")
    with plivo_error(client, exceptions.ValidationError, 400, message):
        client.masking_sessions.update_masking_session(
            created.session_uuid, recording_callback_url=url
        )


def url_of_length(length: int) -> str:
    head = "https://hooks.example.com/recording?pad="
    return head + "x" * (length - len(head))


@pytest.mark.parametrize("method", ["create", "update"])
def test_recording_callback_url_length_limit(
    client: plivo.RestClient, pooled: Account, method: str
) -> None:
    # Seed 000: "The max URL length can be 1000. For longer URLs, an error is thrown."
    target = create(client).session_uuid

    def send(url: str) -> Any:
        if method == "create":
            return create(client, recording_callback_url=url).session
        return client.masking_sessions.update_masking_session(
            target, recording_callback_url=url
        ).session

    longest = url_of_length(1000)
    assert send(longest).recording_callback_url == longest
    message = messages.url_too_long("recording_callback_url")
    for length in (1001, 5000):
        with plivo_error(client, exceptions.ValidationError, 400, message):
            send(url_of_length(length))


# --- the number pool -----------------------------------------------------------------------


def test_pool_exhausted_without_numbers(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # Numbers in someone else's pool do not count.
    admin.add_numbers(admin.create_account("Other"), 3)
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client)


def test_pool_exhausted_when_only_other_countries_numbers_exist(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account, 2, country="US")
    admin.add_numbers(account, 1, country="DE")
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=party_number("IN"), second_party=party_number("US"))
    # geomatch follows the first party, not the second.
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=party_number("IN"), second_party=party_number("DE"))


def test_pool_exhausted_when_only_reserved_numbers_exist(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account, 3, reserved=True)
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client)


def test_pool_exhausted_creates_nothing(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client)
    listed = client.masking_sessions.list_masking_session()
    assert listed.response.meta.total_count == 0


# --- expired sessions ----------------------------------------------------------------------


@pytest.mark.parametrize("ended_by", ["delete", "time"])
def test_session_already_expired(
    client: plivo.RestClient, admin: Admin, pooled: Account, ended_by: str
) -> None:
    created = create(client)
    if ended_by == "delete":
        client.masking_sessions.delete_masking_session(created.session_uuid)
    else:
        expire_by_time(admin, created.session_uuid)
    sessions = client.masking_sessions
    for attempt in (
        lambda: sessions.delete_masking_session(created.session_uuid),
        lambda: sessions.update_masking_session(created.session_uuid, record=True),
        lambda: sessions.update_masking_session(created.session_uuid, session_expiry=3600),
    ):
        with plivo_error(client, exceptions.ValidationError, 400, messages.ALREADY_EXPIRED):
            attempt()
    got = sessions.get_masking_session(created.session_uuid).response
    assert (got.status, got.record) == ("expired", False)  # nothing revived it


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["x" * 40, "ü" * 40],  # the second cannot even be decoded as ASCII by the server
    ids=["ascii", "non-ascii"],
)
def test_wrong_token(server: Server, pooled: Account, token: str) -> None:
    intruder = sdk_client(server.url, dataclasses.replace(pooled, auth_token=token))
    with plivo_error(intruder, exceptions.AuthenticationError, 401, messages.AUTH_FAILED):
        create(intruder)
    with plivo_error(intruder, exceptions.AuthenticationError, 401, messages.AUTH_FAILED):
        intruder.masking_sessions.list_masking_session()


def test_unknown_auth_id(server: Server, admin: Admin, pooled: Account) -> None:
    # Well-formed (the SDK checks the shape) but nobody's.
    stranger = dataclasses.replace(pooled, auth_id="MA" + "Z" * 18)
    intruder = sdk_client(server.url, stranger)
    with plivo_error(intruder, exceptions.AuthenticationError, 401, messages.AUTH_FAILED):
        intruder.masking_sessions.list_masking_session()


def test_another_accounts_token_does_not_open_this_account(
    server: Server, admin: Admin, pooled: Account
) -> None:
    other = admin.create_account("Other")
    mixed = dataclasses.replace(pooled, auth_token=other.auth_token)
    intruder = sdk_client(server.url, mixed)
    with plivo_error(intruder, exceptions.AuthenticationError, 401, messages.AUTH_FAILED):
        create(intruder)


@pytest.mark.parametrize("disabled", ["the account", "its main account"])
def test_disabled_account(server: Server, admin: Admin, account: Account, disabled: str) -> None:
    sub = admin.create_account("Team", parent=account)
    admin.add_numbers(account, subaccount=sub)
    target = sub if disabled == "the account" else account
    admin.sql("UPDATE accounts SET enabled = :no WHERE id = :id", no=False, id=target.id)
    # Disabled itself or through its main account, the subaccount is locked out.
    locked_out = sdk_client(server.url, sub)
    with plivo_error(locked_out, exceptions.AuthenticationError, 401, messages.AUTH_FAILED):
        create(locked_out)


def test_authentication_failure_leaks_nothing_and_changes_nothing(
    server: Server, client: plivo.RestClient, pooled: Account
) -> None:
    created = create(client)
    intruder = sdk_client(server.url, dataclasses.replace(pooled, auth_token="y" * 40))
    for attempt in (
        lambda: intruder.masking_sessions.get_masking_session(created.session_uuid),
        lambda: intruder.masking_sessions.delete_masking_session(created.session_uuid),
    ):
        with plivo_error(intruder, exceptions.AuthenticationError, 401, messages.AUTH_FAILED):
            attempt()
        assert created.session.first_party not in response_log(intruder).last.text
    assert client.masking_sessions.get_masking_session(created.session_uuid).response.status == (
        "active"
    )


# --- not found -----------------------------------------------------------------------------


def test_another_accounts_session_is_not_found(
    server: Server, client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    other = admin.create_account("Other")
    admin.add_numbers(other)
    theirs = create(sdk_client(server.url, other)).session
    secrets = [
        theirs.first_party,
        theirs.second_party,
        theirs.virtual_number,
        other.auth_id,
        other.auth_token,
    ]
    sessions = client.masking_sessions
    log = response_log(client)
    for attempt in (
        lambda: sessions.get_masking_session(theirs.session_uuid),
        lambda: sessions.update_masking_session(theirs.session_uuid, record=True),
        lambda: sessions.update_masking_session(theirs.session_uuid, session_expiry=60),
        lambda: sessions.delete_masking_session(theirs.session_uuid),
    ):
        with plivo_error(client, exceptions.ResourceNotFoundError, 404, messages.SESSION_NOT_FOUND):
            attempt()
        body = log.last.text
        assert not [s for s in secrets if s in body]
        assert set(json.loads(body)) == {"api_id", "error"}

    # Their session is untouched.
    mine_view = sdk_client(server.url, other).masking_sessions
    still = mine_view.get_masking_session(theirs.session_uuid).response
    assert fields(still) == fields(theirs)


UNKNOWN_UUIDS = [
    "00000000-0000-4000-8000-000000000000",  # well-formed, nobody's
    "not-a-uuid",
    "x" * 500,
]


@pytest.mark.parametrize("method", ["get", "update", "delete"])
def test_a_missing_session_and_anothers_look_the_same(
    server: Server, client: plivo.RestClient, admin: Admin, method: str
) -> None:
    # Same status and message whether the uuid exists elsewhere or nowhere, so a client
    # cannot probe for other accounts' sessions.
    other = admin.create_account("Other")
    admin.add_numbers(other)
    theirs = create(sdk_client(server.url, other)).session_uuid
    sessions = client.masking_sessions
    call = {
        "get": sessions.get_masking_session,
        "update": lambda uuid: sessions.update_masking_session(uuid, record=True),
        "delete": sessions.delete_masking_session,
    }[method]
    for uuid in (theirs, *UNKNOWN_UUIDS):
        with plivo_error(client, exceptions.ResourceNotFoundError, 404, messages.SESSION_NOT_FOUND):
            call(uuid)


# NUL bytes, wherever a client can put them through the SDK. No rule of Plivo's names a
# message for them, so any 4xx in Plivo's error shape will do; what must never happen is
# a 5xx (PostgreSQL cannot even compare text holding a NUL).
NUL_REQUESTS = {
    "get uuid": lambda c, uuid: c.get_masking_session("nul\x00" + uuid),
    "update uuid": lambda c, uuid: c.update_masking_session("nul\x00" + uuid, record=True),
    "delete uuid": lambda c, uuid: c.delete_masking_session("nul\x00" + uuid),
    "create subaccount": lambda c, uuid: c.create_masking_session(
        first_party=party_number(), second_party=party_number(), subaccount="SA\x00" + "A" * 17
    ),
    "create party": lambda c, uuid: c.create_masking_session(
        first_party="+1646\x002000000", second_party=party_number()
    ),
    "create url": lambda c, uuid: c.create_masking_session(
        first_party=party_number(),
        second_party=party_number(),
        recording_callback_url="https://example.com/rec\x00",
    ),
    "update url": lambda c, uuid: c.update_masking_session(uuid, callback_url="https://e.com/\x00"),
    "update subaccount": lambda c, uuid: c.update_masking_session(uuid, subaccount="\x00"),
    "list subaccount": lambda c, uuid: c.list_masking_session(subaccount="SA\x00"),
    "list party": lambda c, uuid: c.list_masking_session(first_party="\x00"),
    "list time": lambda c, uuid: c.list_masking_session(created_time="2024-01-01\x00"),
}


@pytest.mark.parametrize("request_name", list(NUL_REQUESTS))
def test_nul_bytes_are_refused_with_a_client_error(
    client: plivo.RestClient, pooled: Account, request_name: str
) -> None:
    created = create(client)
    log = response_log(client)
    seen = len(log.responses)
    with pytest.raises((exceptions.ValidationError, exceptions.ResourceNotFoundError)) as info:
        NUL_REQUESTS[request_name](client.masking_sessions, created.session_uuid)
    assert len(log.responses) == seen + 1  # refused by Veil, not by the SDK
    assert log.last.status_code in (400, 404)
    assert log.last.json()["error"] == str(info.value)
    # The session named in some of the requests is untouched.
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert fields(got) == fields(created.session)


# --- Veil's own messages for the rest of seed 001's rules ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"ring_timeout": 4}, messages.out_of_range("ring_timeout")),
        ({"session_expiry": "soon"}, messages.not_integer("session_expiry")),
        ({"callback_method": "PUT"}, messages.not_method("callback_method")),
        ({"recording_callback_method": "DELETE"}, messages.not_method("recording_callback_method")),
        ({"geomatch": "sometimes"}, messages.not_boolean("geomatch")),
        (
            {"virtual_number_cooloff_period": 3601},
            messages.out_of_range("virtual_number_cooloff_period"),
        ),
        (
            {"first_party_play_url": "https://exa mple.com/a.mp3"},
            messages.not_url("first_party_play_url"),
        ),
        (
            {
                "is_pin_authentication_required": True,
                "first_party_pin": "1234",
                "second_party_pin": "5678",
            },
            messages.missing("pin_prompt_play"),
        ),
        (
            {
                "is_pin_authentication_required": True,
                "pin_prompt_play": "https://m.example.com/p.mp3",
                "second_party_pin": "5678",
            },
            messages.missing("first_party_pin"),
        ),
        (
            {
                "is_pin_authentication_required": True,
                "pin_prompt_play": "https://m.example.com/p.mp3",
                "first_party_pin": "5678",
            },
            messages.missing("second_party_pin"),
        ),
        ({"first_party_pin": "123"}, messages.not_pin("first_party_pin")),
        ({"second_party_pin": "1234567890123456"}, messages.not_pin("second_party_pin")),
        ({"first_party_pin": "12a4"}, messages.not_pin("first_party_pin")),
        ({"first_party_pin": "4321", "second_party_pin": "4321"}, messages.PINS_EQUAL),
        (
            {"pin_prompt_play": "https://m.example.com/p.ogg"},
            messages.not_audio_url("pin_prompt_play"),
        ),
        ({"pin_retry": 6}, messages.out_of_range("pin_retry")),
        ({"pin_retry_wait": 11}, messages.out_of_range("pin_retry_wait")),
        ({"generate_pin_length": 16}, messages.out_of_range("generate_pin_length")),
    ],
)
def test_other_create_arguments_out_of_their_rules(
    client: plivo.RestClient, pooled: Account, args: dict[str, Any], message: str
) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, message):
        create(client, **args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"limit": 0}, messages.LIMIT_RANGE),
        ({"limit": 21}, messages.LIMIT_RANGE),
        ({"offset": -1}, messages.OFFSET_NEGATIVE),
        (
            {"status": "paused"},
            messages.not_one_of("status", "active, in-progress, expired or all"),
        ),
        ({"first_party": "12345"}, messages.invalid_phone("first_party")),
        ({"virtual_number": "abc"}, messages.invalid_phone("virtual_number")),
        ({"duration__gt": "long"}, messages.not_integer("duration__gt")),
        ({"created_time__gte": "yesterday"}, messages.bad_filter_time("created_time__gte")),
        ({"expiry_time": "2024-13-01 00:00"}, messages.bad_filter_time("expiry_time")),
    ],
)
def test_list_arguments_out_of_their_rules(
    client: plivo.RestClient, pooled: Account, args: dict[str, Any], message: str
) -> None:
    with plivo_error(client, exceptions.ValidationError, 400, message):
        client.masking_sessions.list_masking_session(**args)
