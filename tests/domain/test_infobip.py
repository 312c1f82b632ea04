"""Infobip-style number masking rules: what a configuration, an action and credentials
may hold, what the customer's callback may answer, the call's status, and the callback and
status report bodies (seed 003, peers.md section 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.domain.errors import InvalidRequest
from veil.domain.infobip import (
    DTMF_LENGTH_LIMIT,
    DTMF_MAX_LENGTH,
    DTMF_TERMINATOR,
    DTMF_TIMEOUT,
    DTMF_TIMEOUT_LIMIT,
    Audio,
    BadAnswer,
    CallStatus,
    CaptureDtmf,
    ConfigFields,
    ConfigKind,
    Dial,
    MaskedCall,
    MaskingConfig,
    action_fields,
    caller_id_problem,
    config_fields,
    credential_fields,
    infobip_time,
    parse_command,
    status_for_sip,
)

T0 = datetime(2019, 8, 5, 10, 5, 36, 150_000, tzinfo=UTC)
CALLBACK = "https://customer.example/nm/callback"


def make_config(**overrides: Any) -> MaskingConfig:
    values: dict[str, Any] = {
        "id": 1,
        "key": "3FC2A3D4B5E6F7A8B9C0D1E2F3A4B5C6",
        "account_id": 1,
        "kind": ConfigKind.CONFIG,
        "name": "Rides",
        "callback_url": CALLBACK,
        "status_url": "https://customer.example/nm/status",
        "backup_callback_url": "",
        "backup_status_url": "",
        "description": "",
        "insert_time": T0,
        "update_time": T0,
    }
    values.update(overrides)
    return MaskingConfig(**values)


def invalid(call: Any, body: dict[str, Any]) -> str:
    with pytest.raises(InvalidRequest) as caught:
        call(body)
    return caught.value.message


# -- configurations (v2) ------------------------------------------------------------------


def test_config_fields_keep_what_was_sent() -> None:
    body = {
        "name": "  Rides 2024  ",
        "callbackUrl": CALLBACK,
        "statusUrl": "http://customer.example/status?x=1",
        "backupCallbackUrl": "https://backup.example/cb",
        "backupStatusUrl": "https://backup.example/status",
        "description": "Drivers and riders, phase 1.",
    }
    assert config_fields(body) == ConfigFields(
        name="Rides 2024",
        callback_url=CALLBACK,
        status_url="http://customer.example/status?x=1",
        backup_callback_url="https://backup.example/cb",
        backup_status_url="https://backup.example/status",
        description="Drivers and riders, phase 1.",
    )


def test_config_fields_optional_urls_default_to_empty() -> None:
    fields = config_fields({"name": "A", "callbackUrl": CALLBACK, "statusUrl": None})
    assert (fields.status_url, fields.backup_callback_url, fields.backup_status_url) == (
        "",
        "",
        "",
    )
    assert fields.description == ""


@pytest.mark.parametrize("name", ["a", "Z9", "Rides and deliveries 2", "x" * 100])
def test_names_that_are_accepted(name: str) -> None:
    assert config_fields({"name": name, "callbackUrl": CALLBACK}).name == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "[name : may not be empty]"),
        ("", "[name : may not be empty]"),
        ("   ", "[name : may not be empty]"),
        ("x" * 101, "[name : must be alphanumeric, at most 100 characters]"),
        ("rides-2024", "[name : must be alphanumeric, at most 100 characters]"),
        ("rides_2024", "[name : must be alphanumeric, at most 100 characters]"),
        ("Zürich", "[name : must be alphanumeric, at most 100 characters]"),
        (42, "[name : must be a string]"),
    ],
)
def test_names_that_are_refused(name: object, message: str) -> None:
    assert invalid(config_fields, {"name": name, "callbackUrl": CALLBACK}) == message


@pytest.mark.parametrize("callback", [None, "", "  "])
def test_config_callback_url_is_required(callback: object) -> None:
    message = invalid(config_fields, {"name": "A", "callbackUrl": callback})
    assert message == "[callbackUrl : may not be empty]"


@pytest.mark.parametrize("field", ["callbackUrl", "statusUrl", "backupCallbackUrl"])
@pytest.mark.parametrize("bad", ["ftp://customer.example/cb", "customer.example/cb", "http://"])
def test_config_urls_must_be_http(field: str, bad: str) -> None:
    body = {"name": "A", "callbackUrl": CALLBACK, field: bad}
    assert invalid(config_fields, body) == f"[{field} : must be a valid http or https URL]"


def test_config_description_rules() -> None:
    body = {"name": "A", "callbackUrl": CALLBACK, "description": "x" * 1001}
    message = "[description : must be plain text, at most 1000 characters]"
    assert invalid(config_fields, body) == message
    assert invalid(config_fields, {**body, "description": "<script>"}) == message
    assert config_fields({**body, "description": "x" * 1000}).description == "x" * 1000


# -- actions (v1) ---------------------------------------------------------------------------


def test_action_fields() -> None:
    body = {
        "type": "VOICE_NUMBER_MASKING",
        "callbackUrl": CALLBACK,
        "statusUrl": "https://customer.example/status",
    }
    assert action_fields(body) == ConfigFields(
        name="", callback_url=CALLBACK, status_url="https://customer.example/status"
    )
    assert action_fields({**body, "statusUrl": None}).status_url == ""


@pytest.mark.parametrize("kind", [None, "", "voice_number_masking", "FORWARD", 1])
def test_action_type_must_be_voice_number_masking(kind: object) -> None:
    body = {"type": kind, "callbackUrl": CALLBACK}
    assert invalid(action_fields, body) == "[type : must be VOICE_NUMBER_MASKING]"


def test_action_callback_url_is_required_and_http() -> None:
    body: dict[str, Any] = {"type": "VOICE_NUMBER_MASKING"}
    assert invalid(action_fields, body) == "[callbackUrl : may not be empty]"
    body["callbackUrl"] = "mailto:nm@customer.example"
    assert invalid(action_fields, body) == "[callbackUrl : must be a valid http or https URL]"
    body["callbackUrl"] = CALLBACK
    body["statusUrl"] = "ws://customer.example"
    assert invalid(action_fields, body) == "[statusUrl : must be a valid http or https URL]"


# -- credentials ----------------------------------------------------------------------------


def test_credential_fields() -> None:
    assert credential_fields({"apiId": " my-api ", "key": "s3cret"}) == ("my-api", "s3cret")
    assert credential_fields({"apiId": "a" * 255, "key": "k" * 255}) == ("a" * 255, "k" * 255)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"key": "k"}, "[apiId : may not be empty]"),
        ({"apiId": "", "key": "k"}, "[apiId : may not be empty]"),
        ({"apiId": "a"}, "[key : may not be empty]"),
        ({"apiId": "a", "key": "   "}, "[key : may not be empty]"),
        ({"apiId": "a" * 256, "key": "k"}, "[apiId : at most 255 characters]"),
        ({"apiId": "a", "key": "k" * 256}, "[key : at most 255 characters]"),
        ({"apiId": 5, "key": "k"}, "[apiId : must be a string]"),
    ],
)
def test_credentials_that_are_refused(body: dict[str, Any], message: str) -> None:
    assert invalid(credential_fields, body) == message


# -- the callback's answer ------------------------------------------------------------------


@pytest.mark.parametrize("number", ["41793026727", "+41793026727", "+41 79 302 67 27"])
def test_dial_numbers_with_or_without_plus(number: str) -> None:
    assert parse_command({"command": "dial", "phoneNumber": number}) == Dial("+41793026727", "")


def test_dial_with_caller_id() -> None:
    answer = {"command": "dial", "phoneNumber": "41793026727", "callerId": "41793026700"}
    assert parse_command(answer) == Dial("+41793026727", "+41793026700")
    answer["callerId"] = "+41793026700"
    assert parse_command(answer) == Dial("+41793026727", "+41793026700")


@pytest.mark.parametrize("caller_id", [None, ""])
def test_dial_without_caller_id_shows_the_called_number(caller_id: object) -> None:
    answer = {"command": "dial", "phoneNumber": "41793026727", "callerId": caller_id}
    assert parse_command(answer) == Dial("+41793026727", "")


def test_audio() -> None:
    assert parse_command({"command": "audio", "fileId": "f-123"}) == Audio("f-123")


def test_capture_dtmf_defaults() -> None:
    command = parse_command({"command": "captureDtmf"})
    assert command == CaptureDtmf(
        file_id="",
        max_length=DTMF_MAX_LENGTH,
        timeout=DTMF_TIMEOUT,
        terminator=DTMF_TERMINATOR,
    )
    assert (DTMF_MAX_LENGTH, DTMF_TIMEOUT, DTMF_TERMINATOR) == (10, 5, "#")


def test_capture_dtmf_with_everything() -> None:
    answer = {
        "command": "captureDtmf",
        "fileId": "menu",
        "maxLength": 4,
        "timeout": 12,
        "terminator": "*",
    }
    assert parse_command(answer) == CaptureDtmf("menu", 4, 12, "*")
    assert parse_command({**answer, "terminator": ""}) == CaptureDtmf("menu", 4, 12, "")
    # Numbers written as text are numbers.
    assert parse_command({**answer, "maxLength": "6", "timeout": "7"}) == CaptureDtmf(
        "menu", 6, 7, "*"
    )


def test_capture_dtmf_null_fields_mean_the_defaults() -> None:
    """Serializers that write unset fields as null (Jackson's default) must not end the
    call: null is "not given", as it already is for ``fileId`` and ``callerId``."""
    answer = {
        "command": "captureDtmf",
        "fileId": None,
        "maxLength": None,
        "timeout": None,
        "terminator": None,
    }
    assert parse_command(answer) == CaptureDtmf()


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("maxLength", 1, DTMF_LENGTH_LIMIT), ("timeout", 1, DTMF_TIMEOUT_LIMIT)],
)
def test_capture_dtmf_bounds(name: str, low: int, high: int) -> None:
    assert (low, high) in ((1, 32), (1, 60))
    for value in (low, high):
        command = parse_command({"command": "captureDtmf", name: value})
        assert isinstance(command, CaptureDtmf)
        assert getattr(command, "max_length" if name == "maxLength" else "timeout") == value
    for value in (low - 1, high + 1, -5):
        with pytest.raises(BadAnswer) as caught:
            parse_command({"command": "captureDtmf", name: value})
        assert str(caught.value) == f"{name} must be between {low} and {high}"
    for value in (2.5, "two", True, [3], {"n": 3}):
        with pytest.raises(BadAnswer) as caught:
            parse_command({"command": "captureDtmf", name: value})
        assert str(caught.value) == f"{name} must be a whole number"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ([{"command": "dial"}], "the answer is not a JSON object"),
        ("dial", "the answer is not a JSON object"),
        (None, "the answer is not a JSON object"),
        ({}, "no command"),
        ({"command": ""}, "no command"),
        ({"command": "hangup"}, "unknown command 'hangup'"),
        ({"command": "Dial", "phoneNumber": "41793026727"}, "unknown command 'Dial'"),
        ({"command": "dial"}, "dial: phoneNumber is not a valid phone number"),
        ({"command": "dial", "phoneNumber": "12"}, "dial: phoneNumber is not a valid phone number"),
        (
            {"command": "dial", "phoneNumber": "anonymous"},
            "dial: phoneNumber is not a valid phone number",
        ),
        (
            {"command": "dial", "phoneNumber": "41793026727", "callerId": "Veil"},
            "dial: callerId is not a valid phone number",
        ),
        (
            {"command": "dial", "phoneNumber": "41793026727", "callerId": "+999"},
            "dial: callerId is not a valid phone number",
        ),
        ({"command": "audio"}, "audio: fileId is missing"),
        ({"command": "audio", "fileId": ""}, "audio: fileId is missing"),
        ({"command": "audio", "fileId": 7}, "audio: fileId is missing"),
        ({"command": "captureDtmf", "fileId": 7}, "captureDtmf: fileId must be a string"),
        (
            {"command": "captureDtmf", "terminator": "1"},
            'captureDtmf: terminator must be "#", "*" or ""',
        ),
        (
            {"command": "captureDtmf", "terminator": "##"},
            'captureDtmf: terminator must be "#", "*" or ""',
        ),
    ],
)
def test_bad_answers(answer: object, reason: str) -> None:
    with pytest.raises(BadAnswer) as caught:
        parse_command(answer)
    assert str(caught.value) == reason


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["41793026727", "+41793026727", "#", "*", "", "0", "32", "61"])
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_field_names = st.sampled_from(
    ["command", "phoneNumber", "callerId", "fileId", "maxLength", "timeout", "terminator"]
)
_answers = st.dictionaries(_field_names, _json, max_size=7) | st.fixed_dictionaries(
    {"command": st.sampled_from(["dial", "audio", "captureDtmf"])},
    optional={
        "phoneNumber": _scalars,
        "callerId": _scalars,
        "fileId": _scalars,
        "maxLength": _scalars,
        "timeout": _scalars,
        "terminator": _scalars,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_answers, _json))
def test_any_json_answer_is_a_command_or_bad_answer(answer: object) -> None:
    # What orjson can give the asker: the value after a round trip through JSON.
    decoded = orjson.loads(orjson.dumps(answer))
    try:
        command = parse_command(decoded)
    except BadAnswer as exc:
        assert str(exc)
        return
    assert isinstance(command, Dial | Audio | CaptureDtmf)
    if isinstance(command, Dial):
        assert command.phone_number.startswith("+")
        assert command.caller_id == "" or command.caller_id.startswith("+")
    elif isinstance(command, Audio):
        assert command.file_id
    else:
        assert 1 <= command.max_length <= DTMF_LENGTH_LIMIT
        assert 1 <= command.timeout <= DTMF_TIMEOUT_LIMIT
        assert command.terminator in ("", "#", "*")


# -- callerId and the call's status ---------------------------------------------------------


def test_caller_id_problem() -> None:
    called = "+41793026700"
    mine = {"+41793026700", "+41793026701"}
    assert caller_id_problem("", called, mine) is None  # the called number is shown
    assert caller_id_problem(called, called, set()) is None
    assert caller_id_problem("+41793026701", called, mine) is None
    assert caller_id_problem("+41793026799", called, mine) == (
        "callerId is not a number of the account"
    )
    assert caller_id_problem("+41793026701", called, set()) is not None


@pytest.mark.parametrize(
    ("sip", "status"),
    [
        (200, CallStatus.ANSWERED),
        (202, CallStatus.ANSWERED),
        (486, CallStatus.BUSY),
        (600, CallStatus.BUSY),
        (408, CallStatus.NO_ANSWER),
        (480, CallStatus.NO_ANSWER),
        (487, CallStatus.NO_ANSWER),
        (502, CallStatus.CONGESTION),
        (503, CallStatus.CONGESTION),
        (504, CallStatus.CONGESTION),
        (404, CallStatus.FAILED),
        (500, CallStatus.FAILED),
        (403, CallStatus.FAILED),
        (603, CallStatus.FAILED),  # a decline, as the session calls' leg status has it
    ],
)
def test_status_for_sip(sip: int, status: CallStatus) -> None:
    assert status_for_sip(sip) is status


def test_status_values_are_infobip_s() -> None:
    assert [s.value for s in CallStatus] == [
        "answered",
        "busy",
        "no answer",
        "failed",
        "congestion",
    ]


# -- bodies ---------------------------------------------------------------------------------


def make_call(**overrides: Any) -> MaskedCall:
    values: dict[str, Any] = {
        "config": make_config(),
        "caller": "+41793026727",
        "called": "+41793026700",
        "start_time": T0,
        "correlation_id": "call-1",
        "nm_correlation_id": "inbound-1",
    }
    values.update(overrides)
    return MaskedCall(**values)


def test_callback_body() -> None:
    call = make_call()
    assert call.callback_body() == {
        "from": "41793026727",
        "to": "41793026700",
        "correlationId": "call-1",
        "nmCorrelationId": "inbound-1",
    }
    assert call.callback_body("1234") == {
        "from": "41793026727",
        "to": "41793026700",
        "correlationId": "call-1",
        "nmCorrelationId": "inbound-1",
        "dtmfCaptured": True,
        "dtmf": "1234",
    }
    # Nothing pressed is still a capture.
    assert call.callback_body("")["dtmfCaptured"] is True
    assert make_call(caller="").callback_body()["from"] == ""


def test_status_report_of_an_answered_dial() -> None:
    call = make_call(
        action="dial",
        transfer_to="+41793026799",
        status=CallStatus.ANSWERED,
        ringing_time=T0 + timedelta(seconds=1, milliseconds=20),
        answered_time=T0 + timedelta(seconds=4),
        end_time=T0 + timedelta(seconds=64, milliseconds=1),
    )
    assert call.status_report() == {
        "action": "dial",
        "from": "41793026727",
        "to": "41793026700",
        "transferTo": "41793026799",
        "duration": 61,  # 60.001 s, rounded up
        "inboundDuration": 65,  # 64.001 s, rounded up
        "status": "answered",
        "correlationId": "call-1",
        "nmCorrelationId": "inbound-1",
        "ringingTime": "2019-08-05T10:05:37.170+0000",
        "answeredTime": "2019-08-05T10:05:40.150+0000",
    }


def test_status_report_of_an_unanswered_call_says_only_what_is_known() -> None:
    call = make_call(
        action="dial",
        transfer_to="+41793026799",
        status=CallStatus.NO_ANSWER,
        end_time=T0 + timedelta(seconds=30),
    )
    report = call.status_report()
    assert report["duration"] == 0
    assert report["inboundDuration"] == 30
    assert report["status"] == "no answer"
    for absent in ("ringingTime", "answeredTime", "fileId", "cause"):
        assert absent not in report


def test_status_report_of_audio_and_of_a_call_veil_ended() -> None:
    played = make_call(
        action="audio",
        file_id="f-123",
        status=CallStatus.ANSWERED,
        end_time=T0 + timedelta(milliseconds=500),
    ).status_report()
    assert played["fileId"] == "f-123"
    assert played["transferTo"] == ""
    assert played["inboundDuration"] == 1
    assert played["duration"] == 0  # nobody was dialled
    refused = make_call(cause="Number masking callback failed").status_report()
    assert refused["status"] == "failed"
    assert refused["cause"] == "Number masking callback failed"
    assert refused["action"] == ""
    # Not ended yet: no negative or made-up durations.
    assert (refused["duration"], refused["inboundDuration"]) == (0, 0)


def test_infobip_time() -> None:
    assert infobip_time(T0) == "2019-08-05T10:05:36.150+0000"
    assert infobip_time(T0.replace(microsecond=999_999)) == "2019-08-05T10:05:36.999+0000"
    assert infobip_time(T0.replace(microsecond=0)) == "2019-08-05T10:05:36.000+0000"
    zurich = T0.astimezone(timezone(timedelta(hours=2)))
    assert infobip_time(zurich) == "2019-08-05T10:05:36.150+0000"
