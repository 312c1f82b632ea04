"""v1: the account's numbers (so clients learn their ``numberKey``) and the number
masking action on each (``/numbers/1/numbers/{numberKey}/actions``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.infobip import schemas
from veil.api.infobip.auth import caller
from veil.api.infobip.body import read_json
from veil.api.infobip.shapes import action_object, number_object
from veil.api.responses import json_response
from veil.service import infobip as service

router = APIRouter(
    prefix="/numbers/1/numbers",
    tags=["Infobip: numbers and actions (v1)"],
    responses=schemas.ERRORS,
)


@router.get(
    "",
    openapi_extra=schemas.operation(),
    response_model=schemas.NumberList,
    summary="List the account's numbers (query: limit 1-1000, default 50; page from 0)",
)
async def list_numbers(request: Request) -> Response:
    who = await caller(request)
    limit, page = service.parse_numbers_query(dict(request.query_params))
    found, total = await service.list_numbers(who.ctx, who.account, limit=limit, page=page)
    return json_response({"numbers": [number_object(n) for n in found], "numberCount": total})


@router.get(
    "/{numberKey}",
    openapi_extra=schemas.operation("numberKey"),
    response_model=schemas.NumberObject,
    summary="Get a number",
)
async def get_number(request: Request) -> Response:
    who = await caller(request)
    found = await service.get_number(who.ctx, who.account, request.path_params["numberKey"])
    return json_response(number_object(found))


@router.post(
    "/{numberKey}/actions",
    openapi_extra=schemas.operation("numberKey", body=schemas.ActionBody),
    response_model=schemas.ActionObject,
    summary="Set up number masking on the number: Veil asks callbackUrl on each call",
)
async def create_action(request: Request) -> Response:
    who = await caller(request)
    body = await read_json(request)
    action = await service.create_action(
        who.ctx, who.account, request.path_params["numberKey"], body
    )
    return json_response(action_object(action))


# The spec's request example writes the path with "action", singular.
router.add_api_route(
    "/{numberKey}/action", create_action, methods=["POST"], include_in_schema=False
)


@router.get(
    "/{numberKey}/actions",
    openapi_extra=schemas.operation("numberKey"),
    response_model=schemas.ActionList,
    summary="The number masking action on the number",
)
async def list_actions(request: Request) -> Response:
    who = await caller(request)
    found = await service.list_actions(who.ctx, who.account, request.path_params["numberKey"])
    return json_response({"actions": [action_object(a) for a in found]})


@router.get(
    "/{numberKey}/actions/{actionKey}",
    openapi_extra=schemas.operation("numberKey", "actionKey"),
    response_model=schemas.ActionObject,
    summary="Get a number masking action",
)
async def get_action(request: Request) -> Response:
    who = await caller(request)
    params = request.path_params
    action = await service.get_action(
        who.ctx, who.account, params["numberKey"], params["actionKey"]
    )
    return json_response(action_object(action))


@router.delete(
    "/{numberKey}/actions/{actionKey}",
    openapi_extra=schemas.operation("numberKey", "actionKey"),
    status_code=204,
    summary="Delete the action; the number goes back to the masking-session pool",
)
async def delete_action(request: Request) -> Response:
    who = await caller(request)
    params = request.path_params
    await service.delete_action(who.ctx, who.account, params["numberKey"], params["actionKey"])
    return Response(status_code=204)
