"""Every error of the Infobip-shaped API as Infobip writes it:
``{"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": ...}}}``.

Infobip's SDKs read ``messageId`` and ``text`` (``ApiRequestErrorDetails``); the
``messageId`` follows from the status. A ``Conflict`` (a name taken, credentials that
already exist, a number owned by someone else) is a 409 here: Infobip's SDKs declare 409
for these calls, where Plivo's API answers 400.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from veil.api.responses import json_response
from veil.domain.errors import Conflict, VeilError

PREFIXES = ("/numbers/", "/voice/masking/")
INTERNAL_ERROR = "Something went wrong. Please contact support."
_MESSAGE_IDS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    500: "GENERAL_ERROR",
}
_HTTP_TEXTS = {404: "Resource not found.", 405: "Method not allowed for this resource."}


def owns_path(path: str) -> bool:
    """Whether a request path belongs to this API (and its errors to this shape)."""
    return path.startswith(PREFIXES)


def error_response(status: int, text: str) -> Response:
    message_id = _MESSAGE_IDS.get(status, "BAD_REQUEST" if status < 500 else "GENERAL_ERROR")
    return json_response(
        {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}, status
    )


def veil_error(exc: VeilError) -> Response:
    return error_response(409 if isinstance(exc, Conflict) else exc.status_hint, exc.message)


def http_error(exc: HTTPException) -> Response:
    return error_response(exc.status_code, _HTTP_TEXTS.get(exc.status_code, str(exc.detail)))


def internal_error() -> Response:
    return error_response(500, INTERNAL_ERROR)
