"""The Account and Subaccount resources, as Plivo's SDKs call them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.plivo import schemas
from veil.api.plivo.body import read_body
from veil.api.plivo.caller import caller
from veil.api.plivo.shapes import account_object, api_id, meta
from veil.api.responses import json_response
from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.list_filters import parse_paging
from veil.domain.values import MAX_TEXT_LENGTH, Values, normalize_keys
from veil.service import accounts as service

router = APIRouter(prefix="/v1/Account/{auth_id}", tags=["Accounts"], responses=schemas.ERRORS)


@router.get("/", openapi_extra=schemas.operation("auth_id"), summary="Get your account")
async def get_account(request: Request) -> Response:
    who = await caller(request)
    return json_response(
        {
            "api_id": api_id(),
            "account_type": "standard",
            "auth_id": who.account.auth_id,
            "name": who.account.name,
            "enabled": who.account.enabled,
            "created": who.account.created_time.strftime("%Y-%m-%d"),
            "resource_uri": f"/v1/Account/{who.account.auth_id}/",
        }
    )


@router.post(
    "/Subaccount/",
    openapi_extra=schemas.operation("auth_id"),
    status_code=201,
    summary="Create a subaccount",
)
async def create_subaccount(request: Request) -> Response:
    who = await caller(request)
    body = normalize_keys(await read_body(request))
    if who.account.is_subaccount:
        raise InvalidRequest(messages.SUBACCOUNT_CANNOT_CREATE)
    read = Values(body)
    name = read.text("name", max_length=MAX_TEXT_LENGTH)
    if not name:
        raise InvalidRequest(messages.missing("name"))
    sub = await service.create_account(
        who.ctx,
        name=name,
        parent_auth_id=who.account.auth_id,
        enabled=read.boolean("enabled", True),
    )
    return json_response(
        {
            "api_id": api_id(),
            "auth_id": sub.auth_id,
            "auth_token": sub.auth_token,
            "message": "created",
        },
        201,
    )


@router.get("/Subaccount/", openapi_extra=schemas.operation("auth_id"), summary="List subaccounts")
async def list_subaccounts(request: Request) -> Response:
    who = await caller(request)
    limit, offset = parse_paging({k.lower(): v for k, v in request.query_params.items()})
    found, total = await service.list_subaccounts(who.ctx, who.account, limit=limit, offset=offset)
    base = f"{who.public_url}/v1/Account/{who.account.auth_id}/Subaccount/"
    return json_response(
        {
            "api_id": api_id(),
            "meta": meta(base=base, limit=limit, offset=offset, total=total, params={}),
            "objects": [account_object(a, who.account.auth_id) for a in found],
        }
    )


@router.get(
    "/Subaccount/{subaccount}/",
    openapi_extra=schemas.operation("auth_id", "subaccount"),
    summary="Get a subaccount",
)
async def get_subaccount(request: Request) -> Response:
    who = await caller(request)
    subaccount = request.path_params["subaccount"]
    found = await service.get_subaccount(who.ctx, who.account, subaccount)
    return json_response({"api_id": api_id(), **account_object(found, who.account.auth_id)})


@router.post(
    "/Subaccount/{subaccount}/",
    openapi_extra=schemas.operation("auth_id", "subaccount"),
    status_code=202,
    summary="Rename or disable a subaccount",
)
async def update_subaccount(request: Request) -> Response:
    who = await caller(request)
    subaccount = request.path_params["subaccount"]
    read = Values(normalize_keys(await read_body(request)))
    await service.update_subaccount(
        who.ctx,
        who.account,
        subaccount,
        name=read.text("name", max_length=MAX_TEXT_LENGTH) or None,
        enabled=read.boolean("enabled", False) if read.given("enabled") else None,
    )
    return json_response({"api_id": api_id(), "message": "changed"}, 202)
