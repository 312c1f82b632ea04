"""Reading the JSON bodies Infobip's SDKs send, with a size limit read as it streams in."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from veil.domain import infobip as rules
from veil.domain.errors import InvalidRequest

MAX_BODY_BYTES = 64 * 1024  # a configuration with every URL at 2,000 characters is ~10 KiB
# An upload carries the file: 4 MB is ~5.6 MB of base64, and up to 4 characters a byte
# ("255,") as a JSON array of bytes.
MAX_UPLOAD_BYTES = 4 * rules.MAX_FILE_BYTES + 64 * 1024
BODY_TOO_LARGE = "Request body too large."


async def read_json(
    request: Request, *, limit: int = MAX_BODY_BYTES, too_large: str = BODY_TOO_LARGE
) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); ``InvalidRequest`` when it is not one
    or is larger than ``limit`` bytes (``too_large`` says so)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise InvalidRequest(too_large)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise InvalidRequest(too_large)
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(rules.INVALID_BODY) from None
    if not isinstance(data, dict):
        raise InvalidRequest(rules.INVALID_BODY)
    return data
