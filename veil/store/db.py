"""The database handle: engine setup and the two ways to use it, ``read`` and ``write``.

SQLite (the embedded default) allows one writer at a time. Veil serialises its own
writers with an asyncio lock and opens every write transaction with ``BEGIN
IMMEDIATE``, so a transaction that reads and then writes can never hit
``SQLITE_BUSY`` half-way; other processes (the CLI) wait on ``busy_timeout``. Reads
run outside a transaction in WAL mode and never wait for the writer.

PostgreSQL runs writers concurrently; what must not interleave (allocations that
share a party) takes a transaction-scoped advisory lock, see ``lock_keys``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from veil.store import sqlite_inline

SQLITE_BUSY_TIMEOUT_MS = 10_000
_MODE = "veil_mode"


class Database:
    """One engine plus the transaction discipline above."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = make_url(url).database or ""
            kwargs["async_creator"] = lambda: sqlite_inline.connect(path)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One read-write transaction: committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.execution_options(**{_MODE: "write"})
            await _begin_when_unlocked(conn)
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads outside any transaction (each statement sees the
        latest committed data)."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                await conn.execution_options(**{_MODE: "read"})
            else:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def lock_keys(self, conn: AsyncConnection, keys: Iterable[str]) -> None:
        """Serialise transactions that touch the same keys (PostgreSQL advisory locks,
        released at commit). Sorted, so two transactions never wait on each other in a
        cycle. On SQLite, ``write`` is already serial and this does nothing."""
        if self.is_sqlite:
            return
        for key in sorted(set(keys)):
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(key)})

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _begin_when_unlocked(conn: AsyncConnection) -> None:
    """BEGIN IMMEDIATE, waiting asynchronously while another process holds the write lock
    (the inline driver has no busy_timeout: it must never block the event loop)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            await conn.begin()
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await conn.rollback()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def _lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The inline driver opens connections in autocommit mode, so that BEGIN IMMEDIATE
        # is ours to emit (SQLAlchemy's documented recipe for pysqlite/aiosqlite).
        assert dbapi_connection.isolation_level is None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",  # durable against process crashes; see README
            "foreign_keys=ON",
            "busy_timeout=0",  # never block the loop: see _begin_when_unlocked
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_MODE)
        if mode == "write":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif mode != "read":
            conn.exec_driver_sql("BEGIN")
