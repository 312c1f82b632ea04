"""v2: number masking configurations (``/voice/masking/2/config``) and the numbers
linked to each."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.infobip import schemas
from veil.api.infobip.auth import caller
from veil.api.infobip.body import read_json
from veil.api.infobip.shapes import config_object, linked_numbers
from veil.api.responses import json_response
from veil.service import infobip as service

router = APIRouter(
    prefix="/voice/masking/2/config",
    tags=["Infobip: configurations (v2)"],
    responses=schemas.ERRORS,
)


@router.get(
    "",
    openapi_extra=schemas.operation(),
    response_model=list[schemas.ConfigObject],
    summary="List configurations",
)
async def list_configs(request: Request) -> Response:
    who = await caller(request)
    found = await service.list_configs(who.ctx, who.account)
    return json_response([config_object(c) for c in found])


@router.post(
    "",
    openapi_extra=schemas.operation(body=schemas.ConfigBody),
    response_model=schemas.ConfigObject,
    summary="Create a configuration",
)
async def create_config(request: Request) -> Response:
    who = await caller(request)
    config = await service.create_config(who.ctx, who.account, await read_json(request))
    return json_response(config_object(config))


@router.get(
    "/{key}",
    openapi_extra=schemas.operation("key"),
    response_model=schemas.ConfigObject,
    summary="Get a configuration",
)
async def get_config(request: Request) -> Response:
    who = await caller(request)
    config = await service.get_config(who.ctx, who.account, request.path_params["key"])
    return json_response(config_object(config))


@router.put(
    "/{key}",
    openapi_extra=schemas.operation("key", body=schemas.ConfigBody),
    response_model=schemas.ConfigObject,
    summary="Replace a configuration's fields",
)
async def update_config(request: Request) -> Response:
    who = await caller(request)
    body = await read_json(request)
    config = await service.update_config(who.ctx, who.account, request.path_params["key"], body)
    return json_response(config_object(config))


@router.delete(
    "/{key}",
    openapi_extra=schemas.operation("key"),
    summary="Delete a configuration; its numbers go back to the masking-session pool",
)
async def delete_config(request: Request) -> Response:
    who = await caller(request)
    await service.delete_config(who.ctx, who.account, request.path_params["key"])
    return Response(status_code=200)  # Infobip's SDKs declare 200 with no body


@router.get(
    "/{key}/numbers",
    openapi_extra=schemas.operation("key"),
    response_model=schemas.LinkedNumbers,
    summary="The numbers linked to a configuration",
)
async def list_numbers(request: Request) -> Response:
    who = await caller(request)
    found = await service.config_numbers(who.ctx, who.account, request.path_params["key"])
    return json_response(linked_numbers(found))


@router.post(
    "/{key}/numbers",
    openapi_extra=schemas.operation("key", body=schemas.NumbersBody),
    response_model=schemas.LinkedNumbers,
    summary="Link numbers (E.164 numbers or numberKeys) to a configuration, all or none",
)
async def link_numbers(request: Request) -> Response:
    who = await caller(request)
    body = await read_json(request)
    found = await service.link_numbers(who.ctx, who.account, request.path_params["key"], body)
    return json_response(linked_numbers(found))


@router.delete(
    "/{key}/numbers/{numberKey}",
    openapi_extra=schemas.operation("key", "numberKey"),
    status_code=204,
    summary="Unlink a number; it goes back to the masking-session pool",
)
async def unlink_number(request: Request) -> Response:
    who = await caller(request)
    params = request.path_params
    await service.unlink_number(who.ctx, who.account, params["key"], params["numberKey"])
    return Response(status_code=204)
