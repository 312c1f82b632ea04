"""The Webhook resource (``/v1/Account/{auth_id}/Webhook/``): Veil's own, in Plivo's
style, since Plivo has none. It lists the callbacks Veil sent (or is still trying to
send) for the account, newest first, and shows one with the history of its attempts.

List filters: ``status`` (pending, delivered, dead or all), ``session_uuid``, ``event``
(a callback name such as ``SessionTimeout``), ``subaccount``, ``limit`` and ``offset``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.plivo import schemas
from veil.api.plivo.caller import caller
from veil.api.plivo.shapes import api_id, meta
from veil.api.responses import json_response
from veil.domain.delivery import OutboxStatus
from veil.domain.timefmt import format_time
from veil.service import webhooks as service
from veil.service.webhooks import Attempt, DeliveryView

PREFIX = "/v1/Account/{auth_id}/Webhook"

router = APIRouter(prefix=PREFIX, tags=["Webhook deliveries"], responses=schemas.ERRORS)


def _operation_with_event_id() -> dict[str, Any]:
    extra = schemas.operation("auth_id")
    extra["parameters"].append(
        {
            "name": "event_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "The callback's EventId",
        }
    )
    return extra


def webhook_uri(auth_id: str, event_id: str) -> str:
    return f"/v1/Account/{auth_id}/Webhook/{event_id}/"


def webhook_object(delivery: DeliveryView, auth_id: str) -> dict[str, Any]:
    """One delivery as ``auth_id`` sees it. ``next_attempt_time`` only while pending."""
    pending = delivery.status is OutboxStatus.PENDING
    return {
        "event_id": delivery.event_id,
        "event": delivery.event,
        "session_uuid": delivery.session_uuid,
        "sequence": delivery.sequence,
        "url": delivery.url,
        "method": delivery.method,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "created_time": format_time(delivery.created_time),
        "delivered_time": (
            format_time(delivery.delivered_time) if delivery.delivered_time else None
        ),
        "next_attempt_time": format_time(delivery.next_attempt_time) if pending else None,
        "subaccount": delivery.subaccount,
        "resource_uri": webhook_uri(auth_id, delivery.event_id),
    }


def attempt_object(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "time": format_time(attempt.time),
        "url": attempt.url,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


@router.get(
    "/",
    openapi_extra=schemas.operation("auth_id"),
    summary="List webhook deliveries of the last seven days (filters in the query string)",
)
async def list_(request: Request) -> Response:
    who = await caller(request)
    auth_id = who.account.auth_id
    filters = service.parse_webhook_query(request.query_params.multi_items(), who.ctx.clock.now())
    found, total = await service.list_webhooks(who.ctx, who.account, filters)
    base = f"{who.public_url}/v1/Account/{auth_id}/Webhook/"
    page = meta(
        base=base, limit=filters.limit, offset=filters.offset, total=total, params=filters.echo
    )
    page["count"] = total  # as the Recording list: both names
    return json_response(
        {
            "api_id": api_id(),
            "meta": page,
            "objects": [webhook_object(d, auth_id) for d in found],
        }
    )


@router.get(
    "/{event_id}/",
    openapi_extra=_operation_with_event_id(),
    summary="Get a webhook delivery with its attempts",
)
async def get(request: Request) -> Response:
    who = await caller(request)
    detail = await service.get_webhook(who.ctx, who.account, request.path_params["event_id"])
    return json_response(
        {
            "api_id": api_id(),
            **webhook_object(detail.delivery, who.account.auth_id),
            "attempt_history": [attempt_object(a) for a in detail.attempts],
        }
    )
