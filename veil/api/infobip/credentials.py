"""v2: the account's credentials for signing callbacks and status reports
(``/voice/masking/2/credentials``; one pair per account)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.infobip import schemas
from veil.api.infobip.auth import caller
from veil.api.infobip.body import read_json
from veil.api.infobip.shapes import credentials_object
from veil.api.responses import json_response
from veil.service import infobip as service

router = APIRouter(
    prefix="/voice/masking/2/credentials",
    tags=["Infobip: credentials (v2)"],
    responses=schemas.ERRORS,
)


@router.get(
    "",
    openapi_extra=schemas.operation(),
    response_model=schemas.Credentials,
    summary="Get the credentials (404 when there are none)",
)
async def get_credentials(request: Request) -> Response:
    who = await caller(request)
    return json_response(credentials_object(await service.get_credentials(who.ctx, who.account)))


@router.post(
    "",
    openapi_extra=schemas.operation(body=schemas.Credentials),
    response_model=schemas.Credentials,
    summary="Set the credentials (409 when there are some)",
)
async def create_credentials(request: Request) -> Response:
    who = await caller(request)
    body = await read_json(request)
    return json_response(
        credentials_object(await service.create_credentials(who.ctx, who.account, body))
    )


@router.put(
    "",
    openapi_extra=schemas.operation(body=schemas.Credentials),
    response_model=schemas.Credentials,
    summary="Change the credentials (404 when there are none)",
)
async def update_credentials(request: Request) -> Response:
    who = await caller(request)
    body = await read_json(request)
    return json_response(
        credentials_object(await service.update_credentials(who.ctx, who.account, body))
    )


@router.delete(
    "",
    openapi_extra=schemas.operation(),
    status_code=204,
    summary="Delete the credentials: callbacks are sent unsigned again",
)
async def delete_credentials(request: Request) -> Response:
    who = await caller(request)
    await service.delete_credentials(who.ctx, who.account)
    return Response(status_code=204)
