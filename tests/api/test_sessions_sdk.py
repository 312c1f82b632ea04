"""The masking session API driven by Plivo's official Python SDK, on SQLite and PostgreSQL.

Every method of ``client.masking_sessions`` (create, get, update, delete, list) and the
allocation rules a client can observe through them. Error messages of seed 002 are in
test_errors_sdk.py.
"""

from __future__ import annotations

import inspect
import math
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import plivo
import pytest
from plivo import exceptions
from plivo.resources.maskingsession import MaskingSessions

from tests.api.sdk_support import (
    assert_session_shape,
    create,
    end_cooloff,
    expire_by_time,
    fields,
    occupy_pins,
    parse_plivo_time,
    plivo_error,
    response_log,
    sdk_client,
    shift_session_times,
)
from tests.servers import Server
from tests.utils import Admin, party_number
from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.timefmt import format_time


def test_create_get_update_list_delete(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    first, second = party_number(), party_number()

    created = client.masking_sessions.create_masking_session(first_party=first, second_party=second)
    assert created.message == "Session created"
    assert created.virtual_number == number  # with "+" at the top level
    session = created.session
    assert session.virtual_number == number.lstrip("+")  # without it inside
    assert (session.first_party, session.second_party) == (first[1:], second[1:])
    assert session.status == "active"
    assert (session.duration, session.call_time_limit, session.ring_timeout) == (3600, 3600, 120)
    assert session.interaction is None
    assert format_time(parse_plivo_time(session.created_time)) == session.created_time

    got = client.masking_sessions.get_masking_session(created.session_uuid)
    assert got.response.session_uuid == created.session_uuid
    assert got.response.status == "active"

    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, session_expiry=600, record=True, call_time_limit=1800
    )
    assert updated.message == "Session updated"
    assert updated.session.record is True
    assert updated.session.call_time_limit == 1800
    expiry = parse_plivo_time(updated.session.expiry_time)
    modified = parse_plivo_time(updated.session.modified_time)
    assert (expiry - modified).total_seconds() == 600

    listed = client.masking_sessions.list_masking_session()
    assert listed.response.meta.total_count == 1
    [obj] = listed.response.objects
    assert obj.resource_uri == (
        f"/v1/Account/{account.auth_id}/Masking/Session/{created.session_uuid}/"
    )

    deleted = client.masking_sessions.delete_masking_session(created.session_uuid)
    assert deleted.message == "Session expired"
    assert (
        client.masking_sessions.get_masking_session(created.session_uuid).response.status
        == "expired"
    )
    with pytest.raises(exceptions.ValidationError, match=messages.ALREADY_EXPIRED):
        client.masking_sessions.delete_masking_session(created.session_uuid)


def test_status_codes_and_content_type_of_each_method(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # plivo-wire.md section 1, rule 7: 201 for create, 200 for the rest (Ruby accepts
    # only 200 or 204 on DELETE), always JSON (Ruby parses only a json content type).
    admin.add_numbers(account)
    sessions = client.masking_sessions
    uuid = create(client).session_uuid
    sessions.get_masking_session(uuid)
    sessions.update_masking_session(uuid, record=True)
    sessions.list_masking_session()
    sessions.delete_masking_session(uuid)
    seen = response_log(client).responses
    assert [(r.request.method, r.status_code) for r in seen] == [
        ("POST", 201),
        ("GET", 200),
        ("POST", 200),
        ("GET", 200),
        ("DELETE", 200),
    ]
    assert all(r.headers["content-type"].startswith("application/json") for r in seen)


# --- create ------------------------------------------------------------------------------

PIN_PROMPT = "https://media.example.com/prompts/pin_prompt.mp3"
INCORRECT_PIN = "https://media.example.com/prompts/incorrect_pin.wav"
UNKNOWN_CALLER = "https://media.example.com/prompts/unknown_caller.mp3"

# Every optional create attribute with a value that differs from its default (seed 001),
# so an attribute the server ignores cannot pass unnoticed. The parties and subaccount
# depend on the test's data and are added there.
NON_DEFAULT_CREATE = {
    "session_expiry": 7200,  # default 3600
    "call_time_limit": 1200,  # default 3600
    "record": True,
    "record_file_format": "wav",
    "recording_callback_url": "https://hooks.example.com/recording?tag=a1",
    "initiate_call_to_first_party": True,
    "callback_url": "https://hooks.example.com/session",
    "callback_method": "GET",
    "ring_timeout": 30,  # default 120
    "first_party_play_url": "https://media.example.com/first.mp3",
    "second_party_play_url": "https://media.example.com/second.wav",
    "recording_callback_method": "GET",
    "is_pin_authentication_required": True,
    "generate_pin": True,
    "generate_pin_length": 8,  # default 4
    "first_party_pin": "1234",
    "second_party_pin": "5678",
    "pin_prompt_play": PIN_PROMPT,
    "pin_retry": 3,  # default 1
    "pin_retry_wait": 8,  # default 5
    "incorrect_pin_play": INCORRECT_PIN,
    "unknown_caller_play": UNKNOWN_CALLER,
    "geomatch": False,
    "create_session_with_single_party": True,
    "virtual_number_cooloff_period": 900,  # default 0
    "force_pin_authentication": True,
}


def test_create_with_every_sdk_parameter_echoes_each_with_its_json_type(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    sub = admin.create_account("Team", parent=account)
    # A German number scoped to the subaccount is all there is: the session can only get
    # it if both `subaccount` and `geomatch=False` were honoured for a US first party.
    [number] = admin.add_numbers(account, country="DE", subaccount=sub)
    first, second = party_number("US"), party_number("US")
    args = {
        "first_party": first,
        "second_party": second,
        "subaccount": sub.auth_id,
        **NON_DEFAULT_CREATE,
    }
    signature = inspect.signature(MaskingSessions.create_masking_session)
    assert set(args) == set(signature.parameters) - {"self"}  # all 29, no more, no less

    created = client.masking_sessions.create_masking_session(**args)
    # The SDK put every one of them on the wire, natively typed.
    assert response_log(client).last_request_json() == args
    assert response_log(client).last.status_code == 201

    assert created.message == messages.SESSION_CREATED
    assert created.virtual_number == number
    assert created.session_uuid == created.session.session_uuid
    session = fields(created.session)
    assert_session_shape(created.session)

    pins = (session.pop("first_party_pin"), session.pop("second_party_pin"))
    expected = {
        **args,
        "first_party": first[1:],  # echoed without "+"
        "second_party": second[1:],
        "virtual_number": number[1:],
        "status": "active",
        "duration": 7200,
        "amount": 0,
        "interaction": None,
        "total_call_count": 0,
        "total_call_billed_duration": 0,
        "last_interaction_time": "",
    }
    del expected["session_expiry"], expected["first_party_pin"], expected["second_party_pin"]
    echoed = {name: session[name] for name in expected}
    assert echoed == expected
    # Equal is not enough: 1 == True in Python, but Go's struct tells them apart.
    assert {n: type(v) for n, v in echoed.items()} == {n: type(v) for n, v in expected.items()}

    created_time = parse_plivo_time(session["created_time"])
    assert parse_plivo_time(session["expiry_time"]) - created_time == timedelta(seconds=7200)
    assert session["modified_time"] == session["created_time"]

    # generate_pin=True: Veil generates the PINs (generate_pin_length digits, different
    # from each other), the supplied ones only being required when it does not.
    assert all(pin.isdigit() and len(pin) == 8 for pin in pins)
    assert pins[0] != pins[1]


@pytest.mark.parametrize("length", [4, 9, 15])
def test_generate_pin_gives_two_different_pins_of_the_requested_length(
    client: plivo.RestClient, admin: Admin, account: Account, length: int
) -> None:
    admin.add_numbers(account)
    created = create(
        client,
        is_pin_authentication_required=True,
        generate_pin=True,
        generate_pin_length=length,
        pin_prompt_play=PIN_PROMPT,
    )
    session = created.session
    assert session.generate_pin is True and session.generate_pin_length == length
    for pin in (session.first_party_pin, session.second_party_pin):
        assert isinstance(pin, str) and pin.isascii() and pin.isdigit() and len(pin) == length
    assert session.first_party_pin != session.second_party_pin
    # The PINs are stored, not just shown once.
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert (got.first_party_pin, got.second_party_pin) == (
        session.first_party_pin,
        session.second_party_pin,
    )


def test_user_pins_are_echoed(client: plivo.RestClient, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    created = create(
        client,
        is_pin_authentication_required=True,
        first_party_pin="0042",  # a leading zero must survive: PINs are strings
        second_party_pin="987654321012345",  # 15 digits, the maximum
        pin_prompt_play=PIN_PROMPT,
    )
    session = created.session
    assert (session.first_party_pin, session.second_party_pin) == ("0042", "987654321012345")
    assert session.is_pin_authentication_required is True
    assert session.generate_pin is False
    assert_session_shape(session)


def test_a_pin_is_unique_per_virtual_number(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # A caller from an unknown number is routed by the PIN they type, so two active
    # sessions on one number can never share a PIN, even with different parties.
    [first_number] = admin.add_numbers(account)
    pins = {"first_party_pin": "1234", "second_party_pin": "5678"}
    pin_args = {"is_pin_authentication_required": True, "pin_prompt_play": PIN_PROMPT}
    assert create(client, **pins, **pin_args).virtual_number == first_number

    # Either PIN in either role collides.
    for clash in (
        {"first_party_pin": "1234", "second_party_pin": "9999"},
        {"first_party_pin": "9999", "second_party_pin": "1234"},
    ):
        with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
            create(client, **clash, **pin_args)
    # PINs only matter when PIN authentication is on.
    assert create(client, **pins).virtual_number == first_number

    [second_number] = admin.add_numbers(account)
    assert create(client, **pins, **pin_args).virtual_number == second_number


def test_generated_pins_avoid_pins_in_use_on_the_number(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # The number is free for the new parties; only the PINs Veil itself picks could
    # collide. Busy PINs are set up directly in the claims table (as thousands of PIN
    # sessions on the number would leave it) so that only two 4-digit PINs stay free:
    # generating must pick those, not report the pool exhausted.
    [number] = admin.add_numbers(account)
    holder = create(
        client,
        is_pin_authentication_required=True,
        first_party_pin="0000",
        second_party_pin="0001",
        pin_prompt_play=PIN_PROMPT,
    )
    free = {"4711", "8150"}
    every_pin = {f"{i:04d}" for i in range(10_000)}
    occupy_pins(admin, holder.session_uuid, every_pin - free - {"0000", "0001"})

    created = create(
        client,
        is_pin_authentication_required=True,
        generate_pin=True,
        generate_pin_length=4,
        pin_prompt_play=PIN_PROMPT,
    )
    assert created.virtual_number == number
    assert {created.session.first_party_pin, created.session.second_party_pin} == free


# --- single-party sessions ------------------------------------------------------------------


def test_single_party_session_gets_its_second_party_by_update(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    first, second = party_number(), party_number()
    created = client.masking_sessions.create_masking_session(
        first_party=first, create_session_with_single_party=True
    )
    assert created.virtual_number == number
    assert created.session.first_party == first[1:]
    assert created.session.second_party == ""
    assert created.session.create_session_with_single_party is True

    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, second_party=second
    )
    assert updated.message == messages.SESSION_UPDATED
    assert (updated.session.first_party, updated.session.second_party) == (first[1:], second[1:])
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert got.second_party == second[1:]

    # The filled-in party now holds the number like any party: a session between the
    # new party and someone else cannot share it.
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=second)


def test_single_party_session_with_only_the_second_party(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    first, second = party_number(), party_number()
    created = client.masking_sessions.create_masking_session(
        second_party=second, create_session_with_single_party=True
    )
    assert (created.session.first_party, created.session.second_party) == ("", second[1:])
    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, first_party=first
    )
    assert (updated.session.first_party, updated.session.second_party) == (first[1:], second[1:])


def test_replacing_the_party_of_a_single_party_session_frees_the_old_one(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    old, new = party_number(), party_number()
    single = create(client, first_party=old, create_session_with_single_party=True)
    updated = client.masking_sessions.update_masking_session(single.session_uuid, first_party=new)
    assert updated.session.first_party == new[1:]
    # On the only number, the new party is busy and the old one free again.
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=new)
    assert create(client, first_party=old).virtual_number == number


def test_filling_in_a_party_already_busy_on_the_number_is_refused(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # The uniqueness rule holds for a party added later: on the only number, the party
    # already talks to someone else, so it cannot join this session there.
    admin.add_numbers(account)
    busy = party_number()
    create(client, first_party=busy)
    single = create(client, create_session_with_single_party=True)
    with plivo_error(client, exceptions.ValidationError, 400, messages.party_busy("second_party")):
        client.masking_sessions.update_masking_session(single.session_uuid, second_party=busy)
    got = client.masking_sessions.get_masking_session(single.session_uuid).response
    assert got.second_party == ""


def test_filling_in_the_same_number_as_the_other_party_is_refused(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    first = party_number()
    single = create(client, first_party=first, create_session_with_single_party=True)
    with plivo_error(client, exceptions.ValidationError, 400, messages.SAME_PARTY):
        client.masking_sessions.update_masking_session(single.session_uuid, second_party=first)


@pytest.mark.parametrize("name", ["first_party", "second_party"])
def test_parties_of_a_two_party_session_cannot_change(
    client: plivo.RestClient, admin: Admin, account: Account, name: str
) -> None:
    admin.add_numbers(account)
    created = create(client)
    with plivo_error(client, exceptions.ValidationError, 400, messages.immutable(name)):
        client.masking_sessions.update_masking_session(
            created.session_uuid, **{name: party_number()}
        )
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert fields(got) == fields(created.session)  # not even modified_time moved


# --- get ---------------------------------------------------------------------------------


def test_get_returns_the_session_as_created(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    created = create(client, record=True, callback_url="https://hooks.example.com/s")
    got = client.masking_sessions.get_masking_session(created.session_uuid)
    assert isinstance(got.api_id, str) and got.api_id != created.api_id
    assert fields(got.response) == fields(created.session)
    assert_session_shape(got.response)


def test_a_main_account_sees_its_subaccounts_sessions_but_not_the_reverse(
    server: Server, client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    sub = admin.create_account("Team", parent=account)
    admin.add_numbers(account)
    admin.add_numbers(account, subaccount=sub)
    sub_client = sdk_client(server.url, sub)
    own = create(sub_client)
    assert own.session.subaccount == sub.auth_id
    assert client.masking_sessions.get_masking_session(own.session_uuid).response.subaccount == (
        sub.auth_id
    )
    main_session = create(client)
    with plivo_error(sub_client, exceptions.ResourceNotFoundError, 404, messages.SESSION_NOT_FOUND):
        sub_client.masking_sessions.get_masking_session(main_session.session_uuid)


# --- update ------------------------------------------------------------------------------

# (attribute, new value, value echoed): every attribute seed 004 lets an active session
# change, each with a non-default value.
UPDATES = [
    ("record", True, True),
    ("record", "true", True),  # boolean strings too (plivo-wire.md section 1, rule 6)
    ("record_file_format", "wav", "wav"),
    ("recording_callback_url", "https://hooks.example.com/rec", "https://hooks.example.com/rec"),
    ("recording_callback_method", "GET", "GET"),
    ("call_time_limit", 1800, 1800),
    ("call_time_limit", "86400", 86400),  # Ruby can only send strings
    ("callback_url", "https://hooks.example.com/cb", "https://hooks.example.com/cb"),
    ("callback_method", "GET", "GET"),
    ("ring_timeout", 60, 60),
    ("first_party_play_url", "https://m.example.com/1.mp3", "https://m.example.com/1.mp3"),
    ("second_party_play_url", "https://m.example.com/2.wav", "https://m.example.com/2.wav"),
]


@pytest.mark.parametrize(("name", "value", "echoed"), UPDATES)
def test_update_changes_one_attribute_and_nothing_else(
    client: plivo.RestClient, admin: Admin, account: Account, name: str, value: Any, echoed: Any
) -> None:
    admin.add_numbers(account)
    created = create(client)
    before = fields(created.session)
    assert before[name] != echoed  # the update must really change something

    updated = client.masking_sessions.update_masking_session(created.session_uuid, **{name: value})
    assert updated.message == messages.SESSION_UPDATED
    after = fields(updated.session)
    assert after[name] == echoed and type(after[name]) is type(echoed)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {name, "modified_time"}
    assert parse_plivo_time(after["modified_time"]) > parse_plivo_time(before["modified_time"])
    # Stored, not just echoed.
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert fields(got) == after


@pytest.mark.parametrize("session_expiry", [60, 600, 86400])
def test_update_session_expiry_counts_from_now(
    client: plivo.RestClient, admin: Admin, account: Account, session_expiry: int
) -> None:
    admin.add_numbers(account)
    created = create(client, session_expiry=1800)
    # Pretend the session was created 1000.5 s ago, so "now + session_expiry" and
    # "created + session_expiry" differ, and so does a duration that is not floored.
    shift_session_times(
        admin, created.session_uuid, timedelta(seconds=-1000.5), "created_time", "modified_time"
    )
    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, session_expiry=session_expiry
    )
    session = updated.session
    created_time = parse_plivo_time(session.created_time)
    modified = parse_plivo_time(session.modified_time)
    expiry = parse_plivo_time(session.expiry_time)
    assert expiry - modified == timedelta(seconds=session_expiry)
    assert session.duration == math.floor((expiry - created_time).total_seconds())
    assert session.duration >= session_expiry + 1000  # it includes the time already lived
    assert session.status == "active"


def test_update_with_zero_times_changes_nothing(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # Java's SDK always sends session_expiry, call_time_limit and ring_timeout, as 0 when
    # unset (plivo-wire.md section 1, rule 5): 0 means "not given", not "out of range".
    admin.add_numbers(account)
    created = create(client, session_expiry=900, call_time_limit=700, ring_timeout=40)
    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, session_expiry=0, call_time_limit=0, ring_timeout=0
    )
    session = updated.session
    assert (session.call_time_limit, session.ring_timeout) == (700, 40)
    assert session.expiry_time == created.session.expiry_time
    assert session.duration == 900


# Attributes seed 004 freezes on an active session. The SDK's update method only takes
# geomatch and subaccount of them (and the parties, tested above); the others are sent
# with the SDK's own request() so that they still travel the SDK's wire.
IMMUTABLES = [
    # (attribute, the session's value, a different value)
    ("geomatch", True, False),
    ("subaccount", "<sub>", "<other sub>"),
    ("initiate_call_to_first_party", False, True),
    ("is_pin_authentication_required", True, False),
    ("pin_prompt_play", PIN_PROMPT, "https://media.example.com/other_prompt.mp3"),
    ("pin_retry", 2, 3),
    ("pin_retry_wait", 6, 7),
    ("incorrect_pin_play", INCORRECT_PIN, "https://media.example.com/other_wrong.wav"),
    ("unknown_caller_play", UNKNOWN_CALLER, "https://media.example.com/other_unknown.mp3"),
]


@pytest.mark.parametrize(("name", "same", "different"), IMMUTABLES)
def test_immutable_attribute_refused_when_different_accepted_when_same(
    server: Server,
    client: plivo.RestClient,
    admin: Admin,
    account: Account,
    name: str,
    same: Any,
    different: Any,
) -> None:
    sub = admin.create_account("Team", parent=account)
    other_sub = admin.create_account("Other team", parent=account)
    admin.add_numbers(account, subaccount=sub)
    placeholders = {"<sub>": sub.auth_id, "<other sub>": other_sub.auth_id}
    same, different = placeholders.get(same, same), placeholders.get(different, different)
    created = create(
        client,
        subaccount=sub.auth_id,
        is_pin_authentication_required=True,
        first_party_pin="1111",
        second_party_pin="2222",
        pin_prompt_play=PIN_PROMPT,
        pin_retry=2,
        pin_retry_wait=6,
        incorrect_pin_play=INCORRECT_PIN,
        unknown_caller_play=UNKNOWN_CALLER,
    )
    assert getattr(created.session, name) == same

    def update(value: Any) -> Any:
        if name in ("geomatch", "subaccount"):
            return client.masking_sessions.update_masking_session(
                created.session_uuid, **{name: value}
            )
        return client.request(
            "POST",
            ("Masking", "Session", created.session_uuid),
            {name: value},
            is_voice_request=True,
        )

    with plivo_error(client, exceptions.ValidationError, 400, messages.immutable(name)):
        update(different)
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert fields(got) == fields(created.session)

    # Sending the value the session already has is not a change (Java always sends
    # geomatch, for one).
    updated = update(same)
    assert updated.message == messages.SESSION_UPDATED
    assert getattr(updated.session, name) == same


@pytest.mark.parametrize("creator", ["main account", "subaccount"])
def test_resending_the_subaccount_given_at_create_is_accepted(
    server: Server, admin: Admin, account: Account, creator: str
) -> None:
    # Whoever creates a session may name itself as `subaccount` (create accepts it), and
    # SDKs resend create-time values on update: the same value is not a change.
    sub = admin.create_account("Team", parent=account)
    admin.add_numbers(account)
    admin.add_numbers(account, subaccount=sub)
    owner = account if creator == "main account" else sub
    owner_client = sdk_client(server.url, owner)
    created = create(owner_client, subaccount=owner.auth_id)
    updated = owner_client.masking_sessions.update_masking_session(
        created.session_uuid, subaccount=owner.auth_id, ring_timeout=77
    )
    assert updated.session.ring_timeout == 77
    assert updated.session.subaccount == created.session.subaccount


@pytest.mark.parametrize("form", ["with plus", "without plus"])
def test_sending_the_same_parties_again_is_accepted(
    client: plivo.RestClient, admin: Admin, account: Account, form: str
) -> None:
    admin.add_numbers(account)
    first, second = party_number(), party_number()
    created = create(client, first_party=first, second_party=second)
    if form == "without plus":
        first, second = first[1:], second[1:]
    updated = client.masking_sessions.update_masking_session(
        created.session_uuid, first_party=first, second_party=second, ring_timeout=99
    )
    assert updated.session.ring_timeout == 99
    assert (updated.session.first_party, updated.session.second_party) == (
        created.session.first_party,
        created.session.second_party,
    )


# --- delete ------------------------------------------------------------------------------


def test_delete_expires_without_deleting(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    created = create(client)
    deleted = client.masking_sessions.delete_masking_session(created.session_uuid)
    assert deleted.message == messages.SESSION_EXPIRED
    assert fields(deleted).keys() == {"api_id", "message"}
    assert response_log(client).last.status_code == 200  # Ruby takes only 200 or 204

    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert got.status == "expired"
    # The fixtures show a deleted session's expiry_time become the deletion time, with
    # duration left as it was (plivo-wire.md section 5).
    assert got.expiry_time == got.modified_time
    assert parse_plivo_time(got.expiry_time) < parse_plivo_time(created.session.expiry_time)
    assert got.duration == created.session.duration
    assert_session_shape(got)

    # Nothing is hard-deleted: the session is still listed, as expired.
    listed = client.masking_sessions.list_masking_session(status="expired")
    assert [o.session_uuid for o in listed.response.objects] == [created.session_uuid]

    for again in (
        lambda: client.masking_sessions.delete_masking_session(created.session_uuid),
        lambda: client.masking_sessions.update_masking_session(created.session_uuid, record=True),
    ):
        with plivo_error(client, exceptions.ValidationError, 400, messages.ALREADY_EXPIRED):
            again()
    assert fields(client.masking_sessions.get_masking_session(created.session_uuid).response) == (
        fields(got)
    )


def test_a_session_past_its_expiry_time_reads_expired(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    created = create(client)
    expire_by_time(admin, created.session_uuid)
    got = client.masking_sessions.get_masking_session(created.session_uuid).response
    assert got.status == "expired"
    with plivo_error(client, exceptions.ValidationError, 400, messages.ALREADY_EXPIRED):
        client.masking_sessions.delete_masking_session(created.session_uuid)


# --- list --------------------------------------------------------------------------------


def uuids(listed: Any) -> list[str]:
    return [o.session_uuid for o in listed.response.objects]


def test_list_is_newest_first_with_resource_uris_and_default_paging(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    made = [create(client).session_uuid for _ in range(3)]
    listed = client.masking_sessions.list_masking_session()
    assert uuids(listed) == made[::-1]
    meta = fields(listed.response.meta)
    assert meta == {"limit": 20, "offset": 0, "total_count": 3, "next": None, "previous": None}
    for obj in listed.response.objects:
        assert obj.resource_uri == (
            f"/v1/Account/{account.auth_id}/Masking/Session/{obj.session_uuid}/"
        )
        assert_session_shape(obj)
        got = client.masking_sessions.get_masking_session(obj.session_uuid).response
        assert fields(obj) == {**fields(got), "resource_uri": obj.resource_uri}


def test_list_pages_with_limit_offset_and_links_that_keep_the_filters(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    made = [create(client).session_uuid for _ in range(5)]
    newest_first = made[::-1]
    filters = {"virtual_number": number, "status": "active"}
    path = f"/v1/Account/{account.auth_id}/Masking/Session/"

    def link_params(url: str | None) -> dict[str, str] | None:
        if url is None:
            return None
        parts = urlsplit(url)
        assert parts.path == path
        return dict(parse_qsl(parts.query))

    pages = []
    for offset in (0, 2, 4):
        listed = client.masking_sessions.list_masking_session(**filters, limit=2, offset=offset)
        meta = listed.response.meta
        assert (meta.limit, meta.offset, meta.total_count) == (2, offset, 5)
        assert uuids(listed) == newest_first[offset : offset + 2]
        pages.append((link_params(meta.previous), link_params(meta.next)))

    assert pages == [
        (None, {**filters, "limit": "2", "offset": "2"}),
        ({**filters, "limit": "2", "offset": "0"}, {**filters, "limit": "2", "offset": "4"}),
        ({**filters, "limit": "2", "offset": "2"}, None),
    ]
    # A link is usable as is: its parameters give the page it points to.
    next_params = pages[0][1]
    assert next_params is not None
    assert uuids(client.masking_sessions.list_masking_session(**next_params)) == newest_first[2:4]


def test_list_offset_past_the_end_is_empty(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account)
    create(client)
    listed = client.masking_sessions.list_masking_session(offset=5)
    assert listed.response.objects == []
    assert (listed.response.meta.total_count, listed.response.meta.next) == (1, None)


# Values that are well-formed but beyond any stored value: filters that match nothing (or
# everything), never a 5xx from an integer or date overflow inside the server.
EXTREME_FILTERS = [
    ({"offset": 10**20}, False),
    ({"offset": 2**63}, False),
    ({"duration": 2**63 - 1}, False),
    ({"duration__gt": 10**20}, False),
    ({"duration__gt": 2**31 - 1}, False),  # the largest 32-bit integer
    ({"duration": 2**31}, False),
    ({"duration__lt": 10**20}, True),
    ({"duration__lte": 2**63 - 1}, True),
    ({"created_time": "9999-12-31"}, False),
    ({"created_time__lte": "9999-12-31 23:59:59.999999"}, True),
    ({"created_time__gt": "0001-01-01"}, True),
    ({"expiry_time__gt": "9999-12-31 23:59"}, False),
    ({"expiry_time__lt": "9999-12-31 23:59:59"}, True),
]


@pytest.mark.parametrize(
    ("args", "matches"),
    EXTREME_FILTERS,
    ids=[",".join(f"{k}={v}" for k, v in args.items()) for args, _ in EXTREME_FILTERS],
)
def test_list_filters_with_extreme_values(
    client: plivo.RestClient, admin: Admin, account: Account, args: dict[str, Any], matches: bool
) -> None:
    admin.add_numbers(account)
    made = create(client).session_uuid
    listed = client.masking_sessions.list_masking_session(**args)
    assert uuids(listed) == ([made] if matches else [])
    if "offset" not in args:
        assert listed.response.meta.total_count == int(matches)


def test_list_searches_the_last_seven_days_unless_told_otherwise(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # Plivo: "If search boundaries are not provided, the default search window is 7 days."
    admin.add_numbers(account)
    old = create(client).session_uuid
    recent = create(client).session_uuid
    shift_session_times(admin, old, -timedelta(days=8), "created_time")
    listing = client.masking_sessions.list_masking_session
    assert uuids(listing()) == [recent]
    assert listing().response.meta.total_count == 1
    # A created_time bound replaces the default window.
    old_created = parse_plivo_time(
        client.masking_sessions.get_masking_session(old).response.created_time
    )
    since = format_time(old_created)
    assert uuids(listing(created_time__gte=since)) == [recent, old]
    assert uuids(listing(created_time__lt=format_time(old_created + timedelta(days=1)))) == [old]


def test_list_filters_by_party_and_virtual_number(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    first_number, second_number = admin.add_numbers(account, 2)
    agent, alice, bob = party_number(), party_number(), party_number()
    to_alice = create(client, first_party=agent, second_party=alice)
    to_bob = create(client, first_party=agent, second_party=bob)  # agent busy on the first
    from_bob = create(client, first_party=bob, second_party=party_number())  # bob on the second
    assert [s.virtual_number for s in (to_alice, to_bob, from_bob)] == [
        first_number,
        second_number,
        first_number,
    ]
    listing = client.masking_sessions.list_masking_session

    # Numbers are accepted with or without "+", as in create.
    assert uuids(listing(first_party=agent)) == [to_bob.session_uuid, to_alice.session_uuid]
    assert uuids(listing(first_party=agent[1:], second_party=bob)) == [to_bob.session_uuid]
    assert uuids(listing(second_party=bob)) == [to_bob.session_uuid]
    assert uuids(listing(first_party=bob)) == [from_bob.session_uuid]
    assert uuids(listing(virtual_number=second_number[1:])) == [to_bob.session_uuid]
    assert uuids(listing(virtual_number=first_number)) == [
        from_bob.session_uuid,
        to_alice.session_uuid,
    ]
    assert uuids(listing(first_party=party_number())) == []


def test_list_filters_by_status(client: plivo.RestClient, admin: Admin, account: Account) -> None:
    admin.add_numbers(account)
    active = create(client).session_uuid
    deleted = create(client).session_uuid
    timed_out = create(client).session_uuid
    client.masking_sessions.delete_masking_session(deleted)
    # Past its expiry but perhaps not swept yet: it must count as expired at once.
    expire_by_time(admin, timed_out)
    listing = client.masking_sessions.list_masking_session

    assert uuids(listing(status="active")) == [active]
    assert uuids(listing(status="expired")) == [timed_out, deleted]
    assert uuids(listing(status="all")) == [timed_out, deleted, active]
    assert uuids(listing()) == [timed_out, deleted, active]
    statuses = {o.session_uuid: o.status for o in listing().response.objects}
    assert statuses == {active: "active", deleted: "expired", timed_out: "expired"}
    assert listing(status="expired").response.meta.total_count == 2


# Three sessions created in this order, with session_expiry (= duration) chosen so that
# expiry order (B, C, A) differs from creation order (A, B, C): a filter applied to the
# wrong column gives the wrong answer.
EXPIRIES = {"A": 1800, "B": 600, "C": 1200}

# (filter, pivot session whose value the filter uses, sessions expected, newest first)
TIME_FILTERS = [
    ("created_time", "B", "B"),
    ("created_time__lt", "B", "A"),
    ("created_time__lte", "B", "BA"),
    ("created_time__gt", "B", "C"),
    ("created_time__gte", "B", "CB"),
    ("expiry_time", "C", "C"),
    ("expiry_time__lt", "C", "B"),
    ("expiry_time__lte", "C", "CB"),
    ("expiry_time__gt", "C", "A"),
    ("expiry_time__gte", "C", "CA"),
    ("duration", "C", "C"),
    ("duration__lt", "C", "B"),
    ("duration__lte", "C", "CB"),
    ("duration__gt", "C", "A"),
    ("duration__gte", "C", "CA"),
]


@pytest.mark.parametrize(("name", "pivot", "expected"), TIME_FILTERS)
def test_list_filters_by_time_and_duration(
    client: plivo.RestClient,
    admin: Admin,
    account: Account,
    name: str,
    pivot: str,
    expected: str,
) -> None:
    admin.add_numbers(account)
    made = {key: create(client, session_expiry=seconds) for key, seconds in EXPIRIES.items()}
    session = made[pivot].session
    if name.startswith("duration"):
        value: Any = session.duration
    else:
        # The filter value is built from what the API returned, in Plivo's own format.
        column = name.split("__")[0]
        value = format_time(parse_plivo_time(getattr(session, column)))
    listed = client.masking_sessions.list_masking_session(**{name: value})
    assert uuids(listed) == [made[key].session_uuid for key in expected]
    assert listed.response.meta.total_count == len(expected)


def test_list_filters_combine(client: plivo.RestClient, admin: Admin, account: Account) -> None:
    admin.add_numbers(account, 2)  # the agent's two sessions need a number each
    agent = party_number()
    short = create(client, first_party=agent, session_expiry=300)
    create(client, first_party=agent, session_expiry=3000)
    create(client, session_expiry=300)
    listed = client.masking_sessions.list_masking_session(
        first_party=agent, duration__lt=1000, status="active"
    )
    assert uuids(listed) == [short.session_uuid]


def test_list_filters_by_subaccount(
    server: Server, client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    sub = admin.create_account("Team", parent=account)
    other_sub = admin.create_account("Other team", parent=account)
    admin.add_numbers(account)
    admin.add_numbers(account, subaccount=sub)
    admin.add_numbers(account, subaccount=other_sub)
    mine = create(client).session_uuid
    for_sub = create(client, subaccount=sub.auth_id).session_uuid
    for_other = create(client, subaccount=other_sub.auth_id).session_uuid
    listing = client.masking_sessions.list_masking_session

    # The main account sees everything under it, or one subaccount's sessions on request.
    assert uuids(listing()) == [for_other, for_sub, mine]
    assert uuids(listing(subaccount=sub.auth_id)) == [for_sub]
    assert [o.subaccount for o in listing(subaccount=other_sub.auth_id).response.objects] == [
        other_sub.auth_id
    ]
    # A subaccount sees only its own.
    sub_client = sdk_client(server.url, sub)
    assert uuids(sub_client.masking_sessions.list_masking_session()) == [for_sub]
    assert uuids(sub_client.masking_sessions.list_masking_session(subaccount=sub.auth_id)) == [
        for_sub
    ]


def test_list_never_shows_another_accounts_sessions(
    server: Server, client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    other = admin.create_account("Other")
    admin.add_numbers(other)
    admin.add_numbers(account)
    create(sdk_client(server.url, other))
    assert uuids(client.masking_sessions.list_masking_session()) == []
    mine = create(client).session_uuid
    assert uuids(client.masking_sessions.list_masking_session()) == [mine]


# --- allocation rules, as a client sees them -------------------------------------------------


def test_geomatch_gives_a_number_of_the_first_partys_country(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    # US numbers first, so an allocator that ignored geomatch would hand one out.
    admin.add_numbers(account, 2, country="US")
    [india] = admin.add_numbers(account, country="IN")
    created = create(client, first_party=party_number("IN"), second_party=party_number("US"))
    assert created.virtual_number == india
    assert created.session.geomatch is True  # the default


def test_geomatch_false_may_use_another_countrys_number(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [us] = admin.add_numbers(account, country="US")
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=party_number("IN"))
    created = create(client, first_party=party_number("IN"), geomatch=False)
    assert created.virtual_number == us
    assert created.session.geomatch is False


def test_reserved_numbers_are_never_allocated(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    admin.add_numbers(account, 3, reserved=True)  # added first: lowest ids
    [free] = admin.add_numbers(account)
    assert create(client).virtual_number == free
    # Parties are only busy on the free number; the reserved ones still stay untouched.
    assert create(client).virtual_number == free


def test_subaccount_sessions_use_only_the_subaccounts_numbers(
    server: Server, client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    sub = admin.create_account("Team", parent=account)
    [main_number] = admin.add_numbers(account)  # added first: lowest id
    [sub_number] = admin.add_numbers(account, subaccount=sub)

    by_main = create(client, subaccount=sub.auth_id)
    assert by_main.virtual_number == sub_number
    assert by_main.session.subaccount == sub.auth_id
    by_sub = create(sdk_client(server.url, sub))  # the subaccount's own credentials
    assert by_sub.virtual_number == sub_number
    mine = create(client)
    assert mine.virtual_number == main_number
    assert mine.session.subaccount == ""


def test_a_main_account_session_never_takes_a_subaccount_number(
    server: Server, client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    sub = admin.create_account("Team", parent=account)
    admin.add_numbers(account, 2, subaccount=sub)
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client)
    # ...and a subaccount session never takes a main account number.
    other_sub = admin.create_account("Other team", parent=account)
    admin.add_numbers(account)
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, subaccount=other_sub.auth_id)
    other_client = sdk_client(server.url, other_sub)
    with plivo_error(other_client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(other_client)


@pytest.mark.parametrize("whose", ["another account's", "a sibling's"])
def test_a_subaccount_that_is_not_ones_own_is_refused(
    server: Server, admin: Admin, account: Account, whose: str
) -> None:
    stranger = admin.create_account("Stranger")
    their_sub = admin.create_account("Their team", parent=stranger)
    admin.add_numbers(stranger, subaccount=their_sub)
    sub = admin.create_account("Team", parent=account)
    sibling = admin.create_account("Sibling", parent=account)
    admin.add_numbers(account)
    admin.add_numbers(account, subaccount=sub)
    admin.add_numbers(account, subaccount=sibling)
    # A subaccount may not act for its sibling; a main account not for a stranger's.
    principal, named = {
        "another account's": (account, their_sub.auth_id),
        "a sibling's": (sub, sibling.auth_id),
    }[whose]
    acting = sdk_client(server.url, principal)
    with plivo_error(acting, exceptions.ValidationError, 400, messages.SUBACCOUNT_NOT_FOUND):
        create(acting, subaccount=named)
    with plivo_error(acting, exceptions.ValidationError, 400, messages.SUBACCOUNT_NOT_FOUND):
        acting.masking_sessions.list_masking_session(subaccount=named)


def test_a_pair_gets_its_previous_number_back(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    first_number, second_number = admin.add_numbers(account, 2)
    agent, customer = party_number(), party_number()
    # The agent's other session holds the first number, so the pair lands on the second.
    other = create(client, first_party=agent)
    pair = create(client, first_party=agent, second_party=customer)
    assert (other.virtual_number, pair.virtual_number) == (first_number, second_number)
    for session in (other, pair):
        client.masking_sessions.delete_masking_session(session.session_uuid)

    # Both numbers are free now; lowest-first would give the first one, but the customer
    # saved the second one as the agent's number.
    again = create(client, first_party=agent, second_party=customer)
    assert again.virtual_number == second_number


def test_a_pairs_previous_number_is_not_forced_when_busy(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    first_number, second_number = admin.add_numbers(account, 2)
    agent, customer = party_number(), party_number()
    pair = create(client, first_party=agent, second_party=customer)
    assert pair.virtual_number == first_number
    client.masking_sessions.delete_masking_session(pair.session_uuid)
    create(client, first_party=customer)  # the customer is now busy on the first number
    assert create(client, first_party=agent, second_party=customer).virtual_number == (
        second_number
    )


@pytest.mark.parametrize("pool", [1, 3])
def test_a_party_gets_a_different_number_for_each_concurrent_session(
    client: plivo.RestClient, admin: Admin, account: Account, pool: int
) -> None:
    # A call from the agent to a virtual number must identify one session, so each of the
    # agent's sessions needs its own number (seed 002's DID sizing rule follows from it).
    numbers = admin.add_numbers(account, pool)
    agent = party_number()
    given = [create(client, first_party=agent).virtual_number for _ in range(pool)]
    assert sorted(given) == sorted(numbers)
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=agent)
    # Also as second party: the rule is about the person, not the role.
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, second_party=agent)
    # The pool is not exhausted for other people.
    assert create(client).virtual_number in numbers


def test_cooloff_keeps_the_number_from_the_same_parties(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    agent, customer = party_number(), party_number()
    ended = create(
        client, first_party=agent, second_party=customer, virtual_number_cooloff_period=600
    )
    client.masking_sessions.delete_masking_session(ended.session_uuid)

    # For 600 s after the end, neither party may get the number back, with each other or
    # with anyone else: a late call from either would otherwise reach the wrong session.
    for first, second in ((agent, customer), (customer, agent), (agent, party_number())):
        with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
            create(client, first_party=first, second_party=second)
    # Other people are not affected.
    assert create(client).virtual_number == number

    end_cooloff(admin, ended.session_uuid)
    assert create(client, first_party=agent, second_party=customer).virtual_number == number


def test_cooloff_sends_the_pair_to_another_free_number(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    first_number, second_number = admin.add_numbers(account, 2)
    agent, customer = party_number(), party_number()
    ended = create(
        client, first_party=agent, second_party=customer, virtual_number_cooloff_period=3600
    )
    assert ended.virtual_number == first_number
    client.masking_sessions.delete_masking_session(ended.session_uuid)
    # The pair's previous number is cooling off, so stickiness must give way.
    assert create(client, first_party=agent, second_party=customer).virtual_number == (
        second_number
    )


def test_without_cooloff_the_number_is_free_at_once(
    client: plivo.RestClient, admin: Admin, account: Account
) -> None:
    [number] = admin.add_numbers(account)
    agent, customer = party_number(), party_number()
    ended = create(client, first_party=agent, second_party=customer)
    assert ended.session.virtual_number_cooloff_period == 0
    with plivo_error(client, exceptions.ValidationError, 400, messages.POOL_EXHAUSTED):
        create(client, first_party=agent, second_party=customer)  # still active
    client.masking_sessions.delete_masking_session(ended.session_uuid)
    assert create(client, first_party=agent, second_party=customer).virtual_number == number
