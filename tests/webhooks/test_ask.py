"""Asking an Infobip-style configuration's callbackUrl what to do with a call, against real
HTTP servers on loopback: the answer, the signature, and the fall-over to
backupCallbackUrl when the primary is slow, broken, or answers nonsense."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.servers import free_port
from tests.webhooks.receiver import Answer, Received, Receiver
from veil.domain.infobip import (
    Audio,
    CaptureDtmf,
    Command,
    ConfigKind,
    Dial,
    MaskingConfig,
)
from veil.webhooks.ask import AskFailed, CustomerAsker
from veil.webhooks.http1 import MAX_BODY

SHORT = 0.3  # seconds: the asker's timeout where a test makes a URL too slow
PATIENT = 10.0  # seconds: long enough that nothing here ends by timing out
BODY = {
    "from": "41793026727",
    "to": "41793026700",
    "correlationId": "call-1",
    "nmCorrelationId": "inbound-1",
}
DIAL = {"command": "dial", "phoneNumber": "41793026799", "callerId": "41793026700"}
CREDENTIALS = ("nm-api-1", "0123456789abcdef")


def config(callback_url: str, backup_callback_url: str = "") -> MaskingConfig:
    now = datetime.now(UTC)
    return MaskingConfig(
        id=1,
        key="3FC2A3D4B5E6F7A8B9C0D1E2F3A4B5C6",
        account_id=1,
        kind=ConfigKind.CONFIG,
        name="Rides",
        callback_url=callback_url,
        status_url="",
        backup_callback_url=backup_callback_url,
        backup_status_url="",
        description="",
        insert_time=now,
        update_time=now,
    )


def answering(payload: Any, status: int = 200) -> Any:
    """A responder that answers every request with ``payload`` as JSON (bytes as is)."""
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)

    def respond(_request: Received) -> Answer:
        return status, {"Content-Type": "application/json"}, content

    return respond


def ask(
    target: MaskingConfig,
    *,
    timeout: float = PATIENT,
    credentials: tuple[str, str] | None = None,
    block_private: bool = False,
) -> Command:
    async def go() -> Command:
        asker = CustomerAsker(timeout=timeout, block_private=block_private)
        try:
            return await asker.ask(target, BODY, credentials)
        finally:
            await asker.aclose()

    return asyncio.run(go())


def failure(target: MaskingConfig, **options: Any) -> str:
    with pytest.raises(AskFailed) as caught:
        ask(target, **options)
    return str(caught.value)


@pytest.fixture
def backup() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def infobip_signature(request: Received, api_id: str, key: str) -> str:
    """The documented rule, from what the receiver got: path + query + body + key."""
    query = urlsplit(request.url).query
    message = request.path.encode() + query.encode() + request.body + key.encode()
    return f"{api_id}:{hashlib.sha256(message).hexdigest()}"


# -- answers --------------------------------------------------------------------------------


def test_a_dial_answer(receiver: Receiver) -> None:
    receiver.respond = answering(DIAL)
    command = ask(config(receiver.url("/nm/callback")))
    assert command == Dial("+41793026799", "+41793026700")
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/nm/callback"
    assert orjson.loads(request.body) == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("answer", "command"),
    [
        ({"command": "audio", "fileId": "f-1"}, Audio("f-1")),
        ({"command": "captureDtmf", "maxLength": 4}, CaptureDtmf(max_length=4)),
    ],
)
def test_other_commands(receiver: Receiver, answer: dict[str, Any], command: Command) -> None:
    receiver.respond = answering(answer)
    assert ask(config(receiver.url())) == command


def test_a_signed_request(receiver: Receiver) -> None:
    receiver.respond = answering(DIAL)
    target = config(receiver.url("/nm/callback?tenant=7"))
    assert ask(target, credentials=CREDENTIALS) == Dial("+41793026799", "+41793026700")
    [request] = receiver.requests
    assert orjson.loads(request.body) == BODY
    assert request.url.endswith("/nm/callback?tenant=7")
    assert request.headers["Authorization"] == infobip_signature(request, *CREDENTIALS)
    assert request.headers["Authorization"].startswith("nm-api-1:")
    # Not with another key.
    assert request.headers["Authorization"] != infobip_signature(request, "nm-api-1", "other")


# -- falling over to the backup -------------------------------------------------------------


def test_a_slow_primary_falls_over_to_the_backup(receiver: Receiver, backup: Receiver) -> None:
    receiver.hold()  # never answers in time
    receiver.respond = answering(DIAL)
    backup.respond = answering({"command": "audio", "fileId": "sorry"})
    target = config(receiver.url("/primary"), backup.url("/backup"))
    command = ask(target, timeout=SHORT, credentials=CREDENTIALS)
    assert command == Audio("sorry")
    assert len(receiver.requests) == 1
    [request] = backup.requests
    assert orjson.loads(request.body) == BODY
    # Signed for the backup's own path.
    assert request.headers["Authorization"] == infobip_signature(request, *CREDENTIALS)


@pytest.mark.parametrize(
    ("status", "payload", "problem"),
    [
        (500, DIAL, "HTTP 500"),
        (404, DIAL, "HTTP 404"),
        (302, DIAL, "HTTP 302"),
        (200, b"<html>OK</html>", "the answer is not JSON"),
        (200, b"", "the answer is not JSON"),
        (204, b"", "the answer is not JSON"),
        (200, {"command": "hangup"}, "bad answer: unknown command 'hangup'"),
        (200, [DIAL], "bad answer: the answer is not a JSON object"),
        (200, {"command": "dial"}, "bad answer: dial: phoneNumber is not a valid phone number"),
        (200, b" " * (MAX_BODY + 1), "the answer is too large"),
    ],
)
def test_a_broken_primary_falls_over_to_the_backup(
    receiver: Receiver, backup: Receiver, status: int, payload: Any, problem: str
) -> None:
    receiver.respond = answering(payload, status)
    backup.respond = answering(DIAL)
    command = ask(config(receiver.url("/primary"), backup.url("/backup")))
    assert command == Dial("+41793026799", "+41793026700")
    assert len(receiver.requests) == 1
    assert len(backup.requests) == 1
    # And without a backup, the primary's problem is the whole story.
    failed = failure(config(receiver.url("/primary")))
    assert failed == f"callbackUrl: {problem}"


def test_both_failing_names_both_problems(receiver: Receiver, backup: Receiver) -> None:
    receiver.respond = answering({}, 503)
    backup.hold()
    target = config(receiver.url("/primary"), backup.url("/backup"))
    message = failure(target, timeout=SHORT)
    assert message == "callbackUrl: HTTP 503; backupCallbackUrl: timeout after 0.3 s"
    assert (len(receiver.requests), len(backup.requests)) == (1, 1)


def test_no_backup_means_one_request(receiver: Receiver) -> None:
    receiver.respond = answering({"command": "record"})
    message = failure(config(receiver.url()))
    assert message == "callbackUrl: bad answer: unknown command 'record'"
    assert len(receiver.requests) == 1


def test_an_unreachable_url_fails_at_once_not_by_timeout(backup: Receiver) -> None:
    closed = f"http://127.0.0.1:{free_port()}/nm/callback"  # nothing listens there
    message = failure(config(closed))
    assert message.startswith("callbackUrl: ConnectionRefusedError")
    assert "timeout" not in message
    # And the backup still gets its chance.
    backup.respond = answering(DIAL)
    assert ask(config(closed, backup.url())) == Dial("+41793026799", "+41793026700")


def test_urls_veil_will_not_call(receiver: Receiver) -> None:
    message = failure(config("ftp://127.0.0.1/cb", "http:///no-host"))
    assert message == (
        "callbackUrl: refused: scheme 'ftp' is not http or https; "
        "backupCallbackUrl: refused: the URL has no host"
    )
    refused = failure(config(receiver.url()), block_private=True)
    assert refused == "callbackUrl: refused: 127.0.0.1 is a loopback address"
    assert receiver.requests == []


def test_a_late_answer_is_not_taken_for_the_next_one(receiver: Receiver) -> None:
    """The first request times out and its answer comes later; the next ask, on the same
    asker, must get its own answer, not the stale one."""
    answers = [{"command": "audio", "fileId": "late"}, DIAL]
    given: list[Received] = []
    given_one = threading.Event()

    def respond(request: Received) -> Answer:
        given.append(request)
        given_one.set()
        return 200, {}, orjson.dumps(answers[len(given) - 1])

    receiver.respond = respond
    receiver.hold()
    target = config(receiver.url())

    async def go() -> Command:
        asker = CustomerAsker(timeout=SHORT)
        try:
            with pytest.raises(AskFailed, match=r"timeout after 0\.3 s"):
                await asker.ask(target, BODY, None)
            receiver.release()
            assert await asyncio.to_thread(given_one.wait, 10)  # the late answer went out
            asker.timeout = PATIENT
            return await asker.ask(target, BODY, None)
        finally:
            await asker.aclose()

    assert asyncio.run(go()) == Dial("+41793026799", "+41793026700")


def test_a_path_with_spaces_or_non_ascii_is_sent_encoded_and_signed_as_sent(
    receiver: Receiver,
) -> None:
    """Configuration URLs are checked for scheme and host only; what else they hold must
    still make a valid request line, signed as the receiver sees it."""
    receiver.respond = answering(DIAL)
    target = config(receiver.url("/nm call/zürich?city=zürich"))
    assert ask(target, credentials=CREDENTIALS) == Dial("+41793026799", "+41793026700")
    [request] = receiver.requests
    assert request.path == "/nm%20call/z%C3%BCrich"
    assert urlsplit(request.url).query == "city=z%C3%BCrich"
    assert request.headers["Authorization"] == infobip_signature(request, *CREDENTIALS)


def test_a_url_that_cannot_be_requested_is_a_failure_not_a_crash(backup: Receiver) -> None:
    backup.respond = answering(DIAL)
    bad_port = "http://127.0.0.1:99999/nm"
    message = failure(config(bad_port))
    assert message.startswith("callbackUrl: refused: ")
    assert ask(config(bad_port, backup.url())) == Dial("+41793026799", "+41793026700")
