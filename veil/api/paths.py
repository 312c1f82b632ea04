"""Path normalisation for the Plivo-shaped API.

SDKs disagree on slashes (plivo-wire.md section 1): most end every path with ``/``,
Node leaves it off, .NET doubles one (``/Session//{uuid}/``). Routes are declared with
one trailing slash; this middleware folds repeated slashes and adds the trailing one
before routing, so all variants reach the same route without a redirect.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_REPEATED_SLASHES = re.compile(r"//+")
PREFIX = "/v1/"


class NormalizePlivoPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            fixed = _REPEATED_SLASHES.sub("/", path) if "//" in path else path
            if fixed.startswith(PREFIX) and not fixed.endswith("/"):
                fixed += "/"
            if fixed != path:
                scope = dict(scope, path=fixed, raw_path=fixed.encode())
        await self.app(scope, receive, send)
