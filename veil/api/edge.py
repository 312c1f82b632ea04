"""The one middleware in front of the Plivo-shaped API.

- **Paths.** SDKs disagree on slashes (plivo-wire.md section 1): most end every path with
  ``/``, Node leaves it off, .NET doubles one (``/Session//{uuid}/``). Routes are declared
  with one trailing slash; repeated slashes are folded and the trailing one added before
  routing, so all variants reach the same route without a redirect. Only under ``/v1/``:
  the Infobip-compatible paths (``/numbers/``, ``/voice/masking/``) have none.
- **Bugs.** An unexpected exception is answered with a 500 body (Plivo's, or Infobip's on
  its paths) instead of escaping to the server, which would also drop the keep-alive
  connection an SDK is about to reuse.

One middleware rather than two: each layer costs every request a few microseconds.
"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veil.api.errors import internal_error

log = logging.getLogger(__name__)

_REPEATED_SLASHES = re.compile(r"//+")
PREFIX = "/v1/"


def normalize_path(path: str) -> str:
    fixed = _REPEATED_SLASHES.sub("/", path) if "//" in path else path
    if fixed.startswith(PREFIX) and not fixed.endswith("/"):
        fixed += "/"
    return fixed


class PlivoEdge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        fixed = normalize_path(path)
        if fixed != path:
            scope = dict(scope, path=fixed, raw_path=fixed.encode())
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await internal_error(path)(scope, receive, send)
