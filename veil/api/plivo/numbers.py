"""The Number resource (``/v1/Account/{auth_id}/Number/``): the virtual number pool.

Shaped like Plivo's "add a number from your own carrier" API; ``reserved`` is Veil's
addition (a reserved number is never picked by automatic allocation).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.plivo import schemas
from veil.api.plivo.body import read_body
from veil.api.plivo.caller import caller
from veil.api.plivo.shapes import api_id, meta, number_object, pool_report_object
from veil.api.responses import json_response
from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.list_filters import parse_paging
from veil.domain.values import MAX_NUMBER_TYPE_LENGTH, MAX_TEXT_LENGTH, Values, normalize_keys
from veil.service import numbers as service
from veil.service import pool_report as pool_service

router = APIRouter(
    prefix="/v1/Account/{auth_id}/Number", tags=["Numbers"], responses=schemas.ERRORS
)


@router.post(
    "/",
    openapi_extra=schemas.operation("auth_id"),
    status_code=202,
    response_model=schemas.Message,
    summary="Add numbers from your own carrier to the pool",
)
async def add(request: Request) -> Response:
    who = await caller(request)
    body = normalize_keys(await read_body(request))
    read = Values(body)
    raw = body.get("numbers", body.get("number"))
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        listed = [part for part in str(raw).split(",") if part.strip()]
    elif isinstance(raw, list):
        listed = [str(part) for part in raw]
    else:
        raise InvalidRequest(messages.missing("numbers"))
    details = service.NumberDetails(
        carrier=read.text("carrier", max_length=MAX_TEXT_LENGTH),
        region=read.text("region", max_length=MAX_TEXT_LENGTH),
        number_type=read.text("number_type", max_length=MAX_NUMBER_TYPE_LENGTH) or "local",
        alias=read.text("alias", max_length=MAX_TEXT_LENGTH) or None,
        reserved=read.boolean("reserved", False),
    )
    added = await service.add_numbers(
        who.ctx,
        who.account,
        listed,
        subaccount=read.identifier("subaccount") or None,
        details=details,
    )
    return json_response(
        {
            "api_id": api_id(),
            "message": "changed",
            "numbers": [number_object(n, who.account.auth_id) for n in added],
        },
        202,
    )


@router.get("/", openapi_extra=schemas.operation("auth_id"), summary="List numbers")
async def list_(request: Request) -> Response:
    who = await caller(request)
    query = {k.lower(): v for k, v in request.query_params.items()}
    limit, offset = parse_paging(query)
    read = Values(query)
    starts_with = read.text("number_startswith").lstrip("+")
    if starts_with and not (starts_with.isascii() and starts_with.isdigit()):
        raise InvalidRequest(messages.not_digits("number_startswith"))
    found, total = await service.list_numbers(
        who.ctx,
        who.account,
        subaccount=read.identifier("subaccount") or None,
        starts_with=starts_with or None,
        alias=read.text("alias", max_length=MAX_TEXT_LENGTH) or None,
        limit=limit,
        offset=offset,
    )
    echo = {k: v for k, v in query.items() if k in ("subaccount", "number_startswith", "alias")}
    base = f"{who.public_url}/v1/Account/{who.account.auth_id}/Number/"
    return json_response(
        {
            "api_id": api_id(),
            "meta": meta(base=base, limit=limit, offset=offset, total=total, params=echo),
            "objects": [number_object(n, who.account.auth_id) for n in found],
        }
    )


# Before the "/{number}/" routes, which would take "Report" for a number.
@router.get(
    "/Report/",
    openapi_extra=schemas.operation("auth_id"),
    summary="Pool report: each pool's size against its last 7 days of sessions",
)
async def report(request: Request) -> Response:
    who = await caller(request)
    read = Values({k.lower(): v for k, v in request.query_params.items()})
    found = await pool_service.pool_report(
        who.ctx, who.account, subaccount=read.identifier("subaccount") or None
    )
    return json_response({"api_id": api_id(), "objects": [pool_report_object(r) for r in found]})


@router.get(
    "/{number}/", openapi_extra=schemas.operation("auth_id", "number"), summary="Get a number"
)
async def get(request: Request) -> Response:
    who = await caller(request)
    number = request.path_params["number"]
    found = await service.get_number(who.ctx, who.account, number)
    return json_response({"api_id": api_id(), **number_object(found, who.account.auth_id)})


@router.post(
    "/{number}/",
    openapi_extra=schemas.operation("auth_id", "number"),
    status_code=202,
    response_model=schemas.Message,
    summary="Change a number's alias, subaccount or reservation",
)
async def update(request: Request) -> Response:
    who = await caller(request)
    number = request.path_params["number"]
    body = normalize_keys(await read_body(request))
    read = Values(body)
    changes: dict[str, Any] = {}
    if "alias" in body:
        changes["alias"] = read.text("alias", max_length=MAX_TEXT_LENGTH)
    if "subaccount" in body:
        changes["subaccount"] = read.identifier("subaccount")
    reserved = read.boolean("reserved", False) if read.given("reserved") else None
    await service.update_number(who.ctx, who.account, number, reserved=reserved, **changes)
    return json_response({"api_id": api_id(), "message": "changed"}, 202)


@router.delete(
    "/{number}/",
    openapi_extra=schemas.operation("auth_id", "number"),
    status_code=204,
    summary="Remove a number from the pool",
)
async def remove(request: Request) -> Response:
    who = await caller(request)
    number = request.path_params["number"]
    await service.remove_number(who.ctx, who.account, number)
    return Response(status_code=204)
