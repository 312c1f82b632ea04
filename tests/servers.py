"""Real databases and a real Veil server process for the tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from veil.store import migrate

# The CI machine's PostgreSQL: trust auth on loopback, database "test" (DESIGN.md).
POSTGRES_ADMIN_URL = os.environ.get(
    "VEIL_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{directory / 'veil.db'}"
    migrate.upgrade(url)
    yield url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new database of its own on the PostgreSQL server, dropped afterwards."""
    name = "veil_test_" + uuid.uuid4().hex[:12]
    _admin_sql(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate.upgrade(url)
        yield url
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A new, migrated database of the kind named ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        with sqlite_database(directory) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


def _admin_sql(statement: str) -> None:
    """CREATE/DROP DATABASE, which cannot run inside a transaction."""

    async def go() -> None:
        engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(go())


def _port_blocks() -> Iterator[str]:
    """rtpengine port ranges for the test servers: one each, below the kernel's ephemeral
    ports (32768 and up, where the tests' own sockets are). Two rtpengines on one range
    can bind the same port, and then one of them gets the other's packets."""
    for block in itertools.cycle(range(14)):
        low = 10000 + 1500 * block
        yield f"{low}-{low + 1499}"


_media_ports = _port_blocks()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_sip_port() -> int:
    """A loopback port free for both UDP and TCP (``free_port`` only checks TCP, and
    rtpengines hold UDP ports in the same range)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for both UDP and TCP")


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    sip_port: int = 0  # UDP and TCP on 127.0.0.1, or 0 with VEIL_SIP_LISTEN=off

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def veil_server(database_url: str, workdir: Path, **env: str) -> Iterator[Server]:
    """``veil serve`` as a child process on a free port; stopped by its PID afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    environment.update(
        VEIL_DATABASE_URL=database_url,
        VEIL_HTTP_LISTEN=f"127.0.0.1:{port}",
        VEIL_PUBLIC_URL=url,
        VEIL_LOG_LEVEL="warning",
        VEIL_SIP_LISTEN=f"127.0.0.1:{free_sip_port()}",
        # Media through rtpengine only where a test asks for it (tests/media).
        VEIL_MEDIA="off",
    )
    environment.update(env)
    if environment["VEIL_MEDIA"] != "off" and "VEIL_MEDIA_PORTS" not in env:
        environment["VEIL_MEDIA_PORTS"] = next(_media_ports)
    log_path = workdir / f"veil-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "veil.cli", "serve"],
            cwd=workdir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sip = environment["VEIL_SIP_LISTEN"]
    sip_port = 0 if sip == "off" else int(sip.rpartition(":")[2])
    server = Server(url, database_url, process, log_path, sip_port)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_healthy(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"veil serve exited:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"veil serve did not become healthy:\n{server.log()}")
