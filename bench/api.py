"""Session API throughput and latency, on SQLite and PostgreSQL.

Starts a real ``veil serve`` (one process, as ``make run`` does), then measures:
- create throughput: wrk, closed loop, each request a new pair of parties;
- get throughput: wrk, closed loop, over sessions created beforehand;
- latency at a fixed rate (default 500 requests/s, half creates, half gets): an open-loop
  generator that timestamps each request at its *scheduled* send time, so a stalled
  server cannot hide its queueing (no coordinated omission).

Usage: python bench/api.py [--backend sqlite|postgresql|both] [--seconds 10]
Needs wrk (Debian package ``wrk``). Every run is bounded in time and request count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import database, veil_server
from veil.clock import SystemClock
from veil.domain.accounts import Account
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts, numbers, sessions
from veil.service.context import ServiceContext
from veil.store.db import Database

POOL = 1000  # virtual numbers in the account
PRECREATED = 2000  # sessions for the get benchmark
THREADS = 1  # wrk threads: the server needs the other core

CREATE_LUA = """
counter = 0
local id = 0
function setup(thread) id = id + 1; thread:set("id", id) end
function request()
  counter = counter + 1
  local n = 2000000 + id * 1000000 + counter
  local body = string.format('{"first_party":"+1646%%07d","second_party":"+1212%%07d"}', n, n)
  return wrk.format("POST", "%(path)s", {["Authorization"]="%(auth)s",
                    ["Content-Type"]="application/json"}, body)
end
"""

GET_LUA = """
local uuids = {%(uuids)s}
local i = 0
function request()
  i = i %% #uuids + 1
  return wrk.format("GET", "%(path)s" .. uuids[i] .. "/", {["Authorization"]="%(auth)s",
                    ["Content-Type"]="application/json"})
end
"""


async def prepare(url: str) -> tuple[Account, list[str]]:
    db = Database(url)
    ctx = ServiceContext(db=db, clock=SystemClock())
    try:
        account = await accounts.create_account(ctx, name="bench")
        await numbers.add_numbers(ctx, account, [f"+1415{3000000 + i}" for i in range(POOL)])
        uuids = []
        for i in range(PRECREATED):
            request = parse_create(
                {"first_party": f"+1917{2000000 + i}", "second_party": f"+1718{2000000 + i}"},
                Profile.CURRENT,
            )
            uuids.append((await sessions.create_session(ctx, account, request)).uuid)
        return account, uuids
    finally:
        await db.dispose()


def run_wrk(script: str, url: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{THREADS}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                handle.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    percentiles = {
        p: _ms(v, unit) for p, v, unit in re.findall(r"\s+(50|99)%\s+([\d.]+)(us|ms|s)", out)
    }
    return {
        "rate": rate,
        "p50_ms": percentiles.get("50", float("nan")),
        "p99_ms": percentiles.get("99", float("nan")),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def fixed_rate(
    base: str, auth: str, path: str, uuids: list[str], rate: int, seconds: int
) -> dict[str, float]:
    """Open loop at ``rate`` requests/s for ``seconds``: alternating creates and gets."""
    parts = urlsplit(base)
    total = rate * seconds
    latencies: list[float] = []
    errors = 0
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        if i % 2:
            n = 8_000_000 + i
            body = json.dumps({"first_party": f"+1646{n}", "second_party": f"+1212{n}"}).encode()
            head = f"POST {path} HTTP/1.1\r\n"
        else:
            body = b""
            head = f"GET {path}{uuids[i % len(uuids)]}/ HTTP/1.1\r\n"
        request = (
            head + f"Host: {parts.netloc}\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for attempt in range(2):
            # A pooled connection may have been closed by the server's keep-alive timeout:
            # then open a new one and send again.
            fresh = attempt > 0 or not idle
            conn = (
                await asyncio.open_connection(parts.hostname, parts.port) if fresh else idle.pop()
            )
            reader, writer = conn
            try:
                writer.write(request)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                if attempt:
                    errors += 1
                    return
                continue
            break
        latencies.append((time.perf_counter() - scheduled) * 1000)
        if not status_line.split()[1].startswith(b"2"):
            errors += 1
        idle.append(conn)

    await asyncio.gather(*(one(i) for i in range(total)))
    for _, writer in idle:
        writer.close()
    latencies.sort()
    return {
        "rate": rate,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "errors": errors,
    }


def bench(backend: str, seconds: int, connections: int, rate: int) -> dict[str, object]:
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database(backend, directory))
        account, uuids = asyncio.run(prepare(url))
        server = stack.enter_context(veil_server(url, directory))
        auth = (
            "Basic " + base64.b64encode(f"{account.auth_id}:{account.auth_token}".encode()).decode()
        )
        path = f"/v1/Account/{account.auth_id}/Masking/Session/"
        values = {"path": path, "auth": auth}
        quoted = ",".join(f'"{u}"' for u in uuids)
        results: dict[str, object] = {"backend": backend}
        results["create"] = run_wrk(CREATE_LUA % values, server.url + path, seconds, connections)
        results["get"] = run_wrk(
            GET_LUA % {**values, "uuids": quoted}, server.url + path, seconds, connections
        )
        results["fixed_rate"] = asyncio.run(
            fixed_rate(server.url, auth, path, uuids, rate, seconds)
        )
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=10, help="length of each phase (max 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=500, help="requests/s of the latency phase")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/api.py needs wrk: apt-get install wrk")
    seconds = min(args.seconds, 60)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        result = bench(backend, seconds, args.connections, args.rate)
        print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
