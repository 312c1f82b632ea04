"""One place that decides which API's error shape a request gets: Infobip's under the
Infobip-compatible paths (``/numbers/``, ``/voice/masking/``), Plivo's everywhere else.
Used by the exception handlers and by the edge's answer to an unexpected exception."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from veil.api.infobip import errors as infobip
from veil.api.plivo import errors as plivo
from veil.domain.errors import VeilError


async def _veil_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VeilError)
    if infobip.owns_path(request.url.path):
        return infobip.veil_error(exc)
    return plivo.veil_error(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if infobip.owns_path(request.url.path):
        return infobip.http_error(exc)
    return plivo.http_error(exc)


def internal_error(path: str) -> Response:
    """The 500 answer to a bug, in the shape of the API ``path`` belongs to."""
    return infobip.internal_error() if infobip.owns_path(path) else plivo.internal_error()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VeilError, _veil_error)
    app.add_exception_handler(HTTPException, _http_error)
