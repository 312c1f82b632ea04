"""Where a session request's time goes, measured in-process (no network, no load generator).

Calls the real ASGI application directly, then its parts one by one, so the remainder
(framework and middleware) can be read off by subtraction. One request at a time: the
create figures include a commit each (no group commit, which needs concurrent writers).

Usage: python bench/breakdown.py [--backend sqlite|postgresql] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import prepare
from tests.servers import database
from veil.api.plivo.shapes import session_object
from veil.app import build_app
from veil.clock import SystemClock
from veil.config import Settings
from veil.domain.session_params import Profile, parse_create
from veil.service import sessions
from veil.service.accounts import Authenticator
from veil.service.context import ServiceContext
from veil.store import accounts as account_repo
from veil.store.db import Database


async def timed(count: int, step: Callable[[int], Awaitable[Any]]) -> float:
    """Mean microseconds of ``step(i)`` over ``count`` calls, after a short warm-up."""
    for i in range(min(50, count)):
        await step(i)
    start = time.perf_counter()
    for i in range(count):
        await step(i)
    return (time.perf_counter() - start) / count * 1e6


async def measure(url: str, count: int) -> dict[str, float]:
    account, uuids = await prepare(url)
    app = build_app(Settings(database_url=url), background=False)
    auth = b"Basic " + base64.b64encode(f"{account.auth_id}:{account.auth_token}".encode())
    base = f"/v1/Account/{account.auth_id}/Masking/Session/"

    async def asgi(method: str, path: str, body: bytes = b"") -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "headers": [(b"host", b"bench"), (b"authorization", auth),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        }  # fmt: skip
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    def body(i: int, offset: int) -> bytes:
        n = offset + i
        return orjson.dumps({"first_party": f"+1646{n}", "second_party": f"+1212{n}"})

    async with app.router.lifespan_context(app):
        results = {
            "GET request (whole ASGI app)": await timed(
                count, lambda i: asgi("GET", base + uuids[i % len(uuids)] + "/")
            ),
            "POST create request (whole ASGI app)": await timed(
                count // 2, lambda i: asgi("POST", base, body(i, 6_000_000))
            ),
        }

    db = Database(url)
    ctx = ServiceContext(db=db, clock=SystemClock())
    try:
        async with db.read() as conn:
            principal = await account_repo.get_by_auth_id(conn, account.auth_id)
        assert principal is not None
        authenticator = Authenticator(ctx)
        results["authenticate (cached)"] = await timed(
            count, lambda i: authenticator.authenticate(account.auth_id, account.auth_token)
        )
        results["service get_session (one SELECT)"] = await timed(
            count, lambda i: sessions.get_session(ctx, principal, uuids[i % len(uuids)])
        )
        session = await sessions.get_session(ctx, principal, uuids[0])
        now = ctx.clock.now()

        async def shape(_: int) -> bytes:
            return orjson.dumps(session_object(session, now))

        results["session object + JSON"] = await timed(count, shape)

        async def parse(i: int) -> Any:
            return parse_create(orjson.loads(body(i, 7_000_000)), Profile.CURRENT)

        results["parse_create (two new phone numbers)"] = await timed(count, parse)
        requests = [parse_create(orjson.loads(body(i, 8_000_000)), Profile.CURRENT)
                    for i in range(count // 2 + 50)]  # fmt: skip
        results["service create_session (allocate + commit)"] = await timed(
            count // 2, lambda i: sessions.create_session(ctx, principal, requests[i])
        )
    finally:
        await db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, database(args.backend, Path(directory)) as url:
        results = asyncio.run(measure(url, min(args.requests, 20_000)))
    print(f"{args.backend}: mean microseconds per call")
    for name, micros in results.items():
        print(f"  {micros:8.1f}  {name}")


if __name__ == "__main__":
    main()
