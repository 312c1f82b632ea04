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
from veil.api.plivo.deps import ContextDep, PrincipalDep, public_url
from veil.api.plivo.shapes import api_id, meta, number_object
from veil.api.responses import json_response
from veil.domain import messages
from veil.domain.errors import InvalidRequest
from veil.domain.list_filters import parse_paging
from veil.domain.session_params import normalize_keys
from veil.service import numbers as service

router = APIRouter(
    prefix="/v1/Account/{auth_id}/Number", tags=["Numbers"], responses=schemas.ERRORS
)


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidRequest(messages.not_boolean(name))


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidRequest(messages.not_text(name))
    return str(value).strip()


@router.post(
    "/",
    status_code=202,
    response_model=schemas.Message,
    summary="Add numbers from your own carrier to the pool",
)
async def add(request: Request, ctx: ContextDep, principal: PrincipalDep, auth_id: str) -> Response:
    body = normalize_keys(await read_body(request))
    raw = body.get("numbers", body.get("number"))
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        listed = [part for part in str(raw).split(",") if part.strip()]
    elif isinstance(raw, list):
        listed = [str(part) for part in raw]
    else:
        raise InvalidRequest(messages.missing("numbers"))
    details = service.NumberDetails(
        carrier=_text(body, "carrier") or "",
        region=_text(body, "region") or "",
        number_type=_text(body, "number_type") or "local",
        alias=_text(body, "alias") or None,
        reserved=bool(_flag(body, "reserved")),
    )
    added = await service.add_numbers(
        ctx, principal, listed, subaccount=_text(body, "subaccount"), details=details
    )
    return json_response(
        {
            "api_id": api_id(),
            "message": "changed",
            "numbers": [number_object(n, auth_id) for n in added],
        },
        202,
    )


@router.get("/", summary="List numbers")
async def list_(
    request: Request, ctx: ContextDep, principal: PrincipalDep, auth_id: str
) -> Response:
    query = {k.lower(): v for k, v in request.query_params.items()}
    limit, offset = parse_paging(query)
    found, total = await service.list_numbers(
        ctx,
        principal,
        subaccount=query.get("subaccount") or None,
        starts_with=query.get("number_startswith") or None,
        alias=query.get("alias") or None,
        limit=limit,
        offset=offset,
    )
    echo = {k: v for k, v in query.items() if k in ("subaccount", "number_startswith", "alias")}
    base = f"{public_url(request)}/v1/Account/{auth_id}/Number/"
    return json_response(
        {
            "api_id": api_id(),
            "meta": meta(base=base, limit=limit, offset=offset, total=total, params=echo),
            "objects": [number_object(n, auth_id) for n in found],
        }
    )


@router.get("/{number}/", summary="Get a number")
async def get(number: str, ctx: ContextDep, principal: PrincipalDep, auth_id: str) -> Response:
    found = await service.get_number(ctx, principal, number)
    return json_response({"api_id": api_id(), **number_object(found, auth_id)})


@router.post(
    "/{number}/",
    status_code=202,
    response_model=schemas.Message,
    summary="Change a number's alias, subaccount or reservation",
)
async def update(
    number: str, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> Response:
    body = normalize_keys(await read_body(request))
    changes: dict[str, Any] = {}
    if "alias" in body:
        changes["alias"] = _text(body, "alias")
    if "subaccount" in body:
        changes["subaccount"] = _text(body, "subaccount")
    await service.update_number(ctx, principal, number, reserved=_flag(body, "reserved"), **changes)
    return json_response({"api_id": api_id(), "message": "changed"}, 202)


@router.delete("/{number}/", status_code=204, summary="Remove a number from the pool")
async def remove(number: str, ctx: ContextDep, principal: PrincipalDep) -> Response:
    await service.remove_number(ctx, principal, number)
    return Response(status_code=204)
