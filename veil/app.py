"""Wiring: build the application from settings (one process: API and background work)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import Route

from veil import __version__
from veil.api import health, infobip, metrics
from veil.api.edge import PlivoEdge
from veil.api.errors import install_error_handlers
from veil.api.plivo import accounts, numbers, recordings, schemas
from veil.api.plivo import webhooks as webhook_routes
from veil.api.plivo.sessions import session_router
from veil.calls.plane import CallPlane
from veil.clock import Clock, SystemClock
from veil.config import Settings
from veil.domain.phone import parse_e164
from veil.domain.session_params import Profile
from veil.service import sweeper
from veil.service.accounts import Authenticator
from veil.service.context import ServiceContext
from veil.store.db import Database
from veil.webhooks.delivery import DeliveryConfig, DeliveryWorker


def build_app(
    settings: Settings, *, clock: Clock | None = None, background: bool = True
) -> FastAPI:
    """The ASGI application. ``background=False`` leaves the sweeper and the webhook
    delivery worker off (tests drive them by hand)."""
    db = Database(settings.database_url)
    ctx = ServiceContext(db=db, clock=clock or SystemClock(), public_url=settings.public_url)

    plane = CallPlane(settings, ctx) if settings.sip_listen != "off" else None
    webhooks = DeliveryWorker(db, ctx.clock, DeliveryConfig.from_settings(settings))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(sweeper.run_forever(ctx))] if background else []
        if background:
            webhooks.start()
        if plane is not None:
            await plane.start()
        _settle_heap()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await webhooks.stop()
            if plane is not None:
                await plane.stop()
            await db.dispose()

    app = FastAPI(
        title="Veil",
        version=__version__,
        description=(
            "Self-hosted number masking with a Plivo-compatible Masking Session API and an "
            "Infobip-compatible number masking API."
        ),
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.ctx = ctx
    app.state.authenticator = Authenticator(ctx)
    app.state.public_url = settings.public_url
    app.state.settings = settings
    install_error_handlers(app)
    # The routes are declared on FastAPI routers, which describe them in the OpenAPI
    # document, and served as plain Starlette routes: every endpoint takes the request
    # and returns a response (no dependencies to resolve, nothing to validate), and
    # FastAPI's own request handling measured as a quarter of a session read.
    # Matched in order: the busiest first.
    routers = [
        session_router(Profile.CURRENT),
        session_router(Profile.LEGACY),
        numbers.router,
        recordings.router,
        webhook_routes.router,
        accounts.router,
        *infobip.routers,
        health.router,
        metrics.router,
    ]
    documented: list[APIRoute] = []
    for router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            documented.append(route)
            methods = sorted(route.methods or ())
            app.router.routes.append(Route(route.path, route.endpoint, methods=methods))
    app.add_middleware(PlivoEdge)
    _document(app, documented)
    return app


def _settle_heap() -> None:
    """Keep the garbage collector's pauses short; they were the p99 of call setup.

    Everything loaded at startup (libphonenumber's metadata alone is ~90,000 objects)
    is frozen out of the collector's sight: full collections over it took 50-100 ms.
    A larger first generation lets a call's short-lived parsing garbage die young
    instead of being promoted and scanned again in full collections (measured with
    bench/sip.py: longest setup stall from ~65 ms to ~10 ms)."""
    parse_e164("+14155550100")  # load the metadata the request path uses first
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 10)


def _document(app: FastAPI, routes: list[APIRoute]) -> None:
    """The OpenAPI document, from the declared routes (FastAPI does not serve them), with
    the security scheme they name (they authenticate by calling ``caller``, which FastAPI
    cannot see)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                **schemas.SECURITY_SCHEME,
                **infobip.SECURITY_SCHEME,
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
