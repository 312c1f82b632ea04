"""Liveness and readiness: ``/healthz`` answers 200 when the database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from veil.api.responses import json_response
from veil.service.context import ServiceContext

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="Health check")
async def healthz(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    try:
        async with ctx.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not healthy"
        return json_response({"status": "unavailable", "database": type(exc).__name__}, 503)
    return json_response({"status": "ok"})
