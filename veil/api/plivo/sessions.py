"""Masking session routes, current (``/Masking/Session/``) and legacy (``/Session/``).

Both paths share these handlers; the profile picks the defaults and clamping of
veil.domain.session_params.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.plivo import schemas
from veil.api.plivo.body import read_body
from veil.api.plivo.caller import caller
from veil.api.plivo.shapes import api_id, meta, session_object, session_uri
from veil.api.responses import json_response
from veil.domain import messages
from veil.domain.list_filters import parse_list_query
from veil.domain.session_params import Profile, parse_create, parse_update
from veil.service import sessions as service


def session_router(profile: Profile) -> APIRouter:
    legacy = profile is Profile.LEGACY
    prefix = "/v1/Account/{auth_id}/" + ("Session" if legacy else "Masking/Session")
    tag = "Masking sessions (legacy)" if legacy else "Masking sessions"
    router = APIRouter(prefix=prefix, tags=[tag], responses=schemas.ERRORS)
    suffix = profile.value

    @router.post(
        "/",
        status_code=201,
        response_model=schemas.SessionCreated,
        openapi_extra=schemas.operation("auth_id", body=schemas.SessionCreateBody),
        summary="Create a session",
        operation_id=f"create_session_{suffix}",
    )
    async def create(request: Request) -> Response:
        who = await caller(request)
        spec = parse_create(await read_body(request), profile)
        session = await service.create_session(who.ctx, who.account, spec)
        return json_response(
            {
                "api_id": api_id(),
                "session_uuid": session.uuid,
                "virtual_number": session.virtual_number,
                "message": messages.SESSION_CREATED,
                "session": session_object(session, who.ctx.clock.now()),
            },
            201,
        )

    @router.get(
        "/",
        response_model=schemas.SessionList,
        openapi_extra=schemas.operation("auth_id"),
        summary="List sessions (filters in the query string)",
        operation_id=f"list_sessions_{suffix}",
    )
    async def list_(request: Request) -> Response:
        who = await caller(request)
        auth_id = who.account.auth_id
        now = who.ctx.clock.now()
        filters = parse_list_query(request.query_params.multi_items(), now)
        found, total = await service.list_sessions(who.ctx, who.account, filters)
        objects: list[dict[str, Any]] = []
        account_url = f"{who.public_url}/v1/Account/{auth_id}"
        for session in found:
            obj = session_object(session, now, account_url)
            obj["resource_uri"] = session_uri(auth_id, session.uuid, legacy=legacy)
            objects.append(obj)
        base = who.public_url + prefix.replace("{auth_id}", auth_id) + "/"
        page = meta(
            base=base, limit=filters.limit, offset=filters.offset, total=total, params=filters.echo
        )
        return json_response({"api_id": api_id(), "response": {"meta": page, "objects": objects}})

    @router.get(
        "/{session_uuid}/",
        response_model=schemas.SessionGot,
        openapi_extra=schemas.operation("auth_id", "session_uuid"),
        summary="Get a session",
        operation_id=f"get_session_{suffix}",
    )
    async def get(request: Request) -> Response:
        who = await caller(request)
        session = await service.get_session(
            who.ctx, who.account, request.path_params["session_uuid"]
        )
        account_url = f"{who.public_url}/v1/Account/{who.account.auth_id}"
        return json_response(
            {
                "api_id": api_id(),
                "response": session_object(session, who.ctx.clock.now(), account_url),
            }
        )

    @router.post(
        "/{session_uuid}/",
        response_model=schemas.SessionUpdated,
        openapi_extra=schemas.operation("auth_id", "session_uuid", body=schemas.SessionUpdateBody),
        summary="Update a session",
        operation_id=f"update_session_{suffix}",
    )
    async def update(request: Request) -> Response:
        who = await caller(request)
        changes = parse_update(await read_body(request), profile)
        session = await service.update_session(
            who.ctx, who.account, request.path_params["session_uuid"], changes
        )
        return json_response(
            {
                "api_id": api_id(),
                "message": messages.SESSION_UPDATED,
                "session": session_object(session, who.ctx.clock.now()),
            }
        )

    @router.delete(
        "/{session_uuid}/",
        response_model=schemas.Message,
        openapi_extra=schemas.operation("auth_id", "session_uuid"),
        summary="Expire a session (no hard deletion)",
        operation_id=f"expire_session_{suffix}",
    )
    async def expire(request: Request) -> Response:
        who = await caller(request)
        await service.expire_session(who.ctx, who.account, request.path_params["session_uuid"])
        return json_response({"api_id": api_id(), "message": messages.SESSION_EXPIRED})

    return router
