"""Every error of the Plivo-shaped API as ``{"api_id": ..., "error": message}``.

Every SDK reads the ``error`` key as the exception message; Go treats an empty error
body as success, so there is always a body (plivo-wire.md section 1, rule 8).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from veil.api.plivo.shapes import api_id
from veil.api.responses import json_response
from veil.domain import messages
from veil.domain.errors import VeilError

_HTTP_MESSAGES = {404: messages.RESOURCE_NOT_FOUND, 405: messages.METHOD_NOT_ALLOWED}


def error_response(status: int, message: str) -> Response:
    response = json_response({"api_id": api_id(), "error": message}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Veil"'
    return response


def veil_error(exc: VeilError) -> Response:
    return error_response(exc.status_hint, exc.message)


def http_error(exc: HTTPException) -> Response:
    return error_response(exc.status_code, _HTTP_MESSAGES.get(exc.status_code, str(exc.detail)))


def internal_error() -> Response:
    return error_response(500, messages.INTERNAL_ERROR)
