"""Reading request bodies the way Plivo's SDKs send them.

Bodies are JSON objects (every SDK), but Veil also takes a form-encoded body (curl
users). Nothing is required of GET and DELETE bodies: SDKs send ``Content-Type:
application/json`` with no body, ``{}``, or ``{"session_uuid": ...}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request

from veil.domain import messages
from veil.domain.errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024  # a session create is under 4 KiB even with every URL at 1000


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest(messages.INVALID_BODY)
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidRequest(messages.INVALID_BODY) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(messages.INVALID_BODY) from None
    if not isinstance(data, dict):
        raise InvalidRequest(messages.INVALID_BODY)
    return data
