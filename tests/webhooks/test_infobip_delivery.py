"""Infobip-style status reports through the outbox: a real DeliveryWorker sends them to a
real receiver as a JSON POST, signed with the owning account's masking credentials when it
has them, and falls over to backupStatusUrl when statusUrl fails for good. Real SQLite and
PostgreSQL (the ``url`` fixture)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import orjson

from tests.webhooks.receiver import Received, Receiver
from tests.webhooks.test_delivery import (
    attempts_of,
    new_account,
    row,
    run,
    settle,
    worker,
)
from veil.domain.accounts import Account
from veil.service.context import ServiceContext
from veil.store import infobip, outbox

REPORT: dict[str, Any] = {
    "action": "dial",
    "from": "41793026727",
    "to": "41793026700",
    "transferTo": "41793026799",
    "duration": 61,
    "inboundDuration": 65,
    "status": "answered",
    "correlationId": "call-1",
    "nmCorrelationId": "inbound-1",
    "ringingTime": "2019-08-05T10:05:37.170+0000",
    "answeredTime": "2019-08-05T10:05:40.150+0000",
}


async def enqueue(
    ctx: ServiceContext, account: Account, url: str, backup_url: str = "", **body: Any
) -> str:
    async with ctx.db.write() as conn:
        return await outbox.enqueue_json(
            conn,
            account_id=account.id,
            event="NumberMaskingStatus",
            url=url,
            backup_url=backup_url,
            body={**REPORT, **body},
            now=ctx.clock.now(),
        )


async def give_credentials(ctx: ServiceContext, account: Account, api_id: str, key: str) -> None:
    async with ctx.db.write() as conn:
        await infobip.insert_credentials(conn, account.id, api_id, key)


def infobip_signature(request: Received, api_id: str, key: str) -> str:
    """The documented rule, from what the receiver got: path + query + body + key."""
    query = urlsplit(request.url).query
    message = request.path.encode() + query.encode() + request.body + key.encode()
    return f"{api_id}:{hashlib.sha256(message).hexdigest()}"


def assert_json_report(request: Received, event_id: str, **body: Any) -> None:
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Veil-Event-Id"] == event_id
    assert request.body == orjson.dumps({**REPORT, **body})  # byte for byte, in order
    # None of the Plivo-style wire: no form, no Plivo signatures.
    assert not any(name.startswith("X-Plivo") for name in request.headers)


def test_a_report_without_credentials_is_unsigned_json(url: str, receiver: Receiver) -> None:
    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        event_id = await enqueue(ctx, account, receiver.url("/nm/status?tenant=7"))
        async with worker(ctx.db):
            await settle(ctx.db, [event_id])
        [request] = receiver.requests
        assert_json_report(request, event_id)
        assert request.url.endswith("/nm/status?tenant=7")
        assert "Authorization" not in request.headers
        stored = await row(ctx.db, event_id)
        assert (stored.status, stored.attempts, stored.format) == ("delivered", 1, "infobip")
        [attempt] = await attempts_of(ctx.db, event_id)
        assert (attempt.url, attempt.status_code) == (receiver.url("/nm/status?tenant=7"), 200)

    run(url, scenario)


def test_a_report_is_signed_with_the_owner_s_credentials(url: str, receiver: Receiver) -> None:
    async def scenario(ctx: ServiceContext) -> None:
        signed_owner = await new_account(ctx)
        other = await new_account(ctx)  # no credentials of its own
        await give_credentials(ctx, signed_owner, "nm-api-1", "0123456789abcdef")
        signed = await enqueue(ctx, signed_owner, receiver.url("/nm/status?tenant=7"))
        unsigned = await enqueue(ctx, other, receiver.url("/nm/other"), status="busy")
        async with worker(ctx.db):
            await settle(ctx.db, [signed, unsigned])
        requests = {r.event_id: r for r in receiver.requests}
        assert sorted(requests) == sorted([signed, unsigned])
        request = requests[signed]
        assert_json_report(request, signed)
        authorization = request.headers["Authorization"]
        assert authorization == infobip_signature(request, "nm-api-1", "0123456789abcdef")
        assert authorization != infobip_signature(request, "nm-api-1", "another key")
        # Another account's report is not signed with these credentials.
        assert_json_report(requests[unsigned], unsigned, status="busy")
        assert "Authorization" not in requests[unsigned].headers

    run(url, scenario)


def test_a_failing_status_url_falls_over_to_the_backup(url: str, receiver: Receiver) -> None:
    receiver.respond = lambda r: (404, {}) if r.path == "/primary" else (200, {})

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        await give_credentials(ctx, account, "nm-api-2", "k")
        event_id = await enqueue(
            ctx, account, receiver.url("/primary"), backup_url=receiver.url("/backup?b=1")
        )
        async with worker(ctx.db):
            await settle(ctx.db, [event_id])
        assert (await row(ctx.db, event_id)).status == "delivered"
        tries = await attempts_of(ctx.db, event_id)
        assert [(a.url, a.status_code) for a in tries] == [
            (receiver.url("/primary"), 404),
            (receiver.url("/backup?b=1"), 200),
        ]
        primary, backup = receiver.requests
        for request in (primary, backup):
            assert_json_report(request, event_id)  # the same body and event id both times
            # Each signed for the URL it went to.
            assert request.headers["Authorization"] == infobip_signature(request, "nm-api-2", "k")
        assert primary.headers["Authorization"] != backup.headers["Authorization"]

    run(url, scenario)


def test_both_urls_failing_leave_the_report_dead(url: str, receiver: Receiver) -> None:
    receiver.respond = lambda r: (410, {})

    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        event_id = await enqueue(
            ctx, account, receiver.url("/primary"), backup_url=receiver.url("/backup")
        )
        async with worker(ctx.db):
            await settle(ctx.db, [event_id])
        stored = await row(ctx.db, event_id)
        assert stored.status == "dead"
        assert stored.last_error == "HTTP 410; backup: HTTP 410"
        assert [r.path for r in receiver.requests] == ["/primary", "/backup"]

    run(url, scenario)


def test_a_path_with_spaces_or_non_ascii_is_sent_encoded_and_signed_as_sent(
    url: str, receiver: Receiver
) -> None:
    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        await give_credentials(ctx, account, "nm-api-3", "k3")
        event_id = await enqueue(ctx, account, receiver.url("/nm status/zürich?c=zürich"))
        async with worker(ctx.db):
            await settle(ctx.db, [event_id], within=5)
        assert (await row(ctx.db, event_id)).status == "delivered"
        [request] = receiver.requests
        assert request.path == "/nm%20status/z%C3%BCrich"
        assert urlsplit(request.url).query == "c=z%C3%BCrich"
        assert request.headers["Authorization"] == infobip_signature(request, "nm-api-3", "k3")

    run(url, scenario)


def test_a_url_that_cannot_be_requested_is_refused(url: str, receiver: Receiver) -> None:
    async def scenario(ctx: ServiceContext) -> None:
        account = await new_account(ctx)
        event_id = await enqueue(
            ctx, account, "http://127.0.0.1:99999/nm", backup_url=receiver.url("/backup")
        )
        async with worker(ctx.db):
            await settle(ctx.db, [event_id], within=5)
        assert (await row(ctx.db, event_id)).status == "delivered"
        first, second = await attempts_of(ctx.db, event_id)
        assert first.error is not None and first.error.startswith("refused: ")
        assert (second.url, second.status_code) == (receiver.url("/backup"), 200)

    run(url, scenario)
