"""The database handle: engine setup and the two ways to use it, ``read`` and ``write``.

Repositories see one small interface, ``Conn`` (``await conn.execute(statement, params)``),
behind which the two databases are driven differently:

- **PostgreSQL** through SQLAlchemy's asyncio engine and asyncpg. Writers run
  concurrently; what must not interleave (allocations that share a party) takes a
  transaction-scoped advisory lock, see ``lock_keys``.
- **SQLite** (the embedded default) through SQLAlchemy's synchronous engine, *inline on
  the event loop*. A statement on a local WAL-mode file takes microseconds; handing it
  to a thread, as aiosqlite does (and SQLAlchemy's async adapter on top, with greenlets
  and a task per connection close), measured at several times the cost of the statement
  itself. What keeps the loop from ever waiting on SQLite:
  * Veil's own writers are serialised by an asyncio lock, and WAL readers never wait
    for the writer;
  * write transactions start with ``BEGIN IMMEDIATE`` (so they cannot fail half-way on
    a lock) under ``busy_timeout=0``: when another process (the CLI) holds the write
    lock, the attempt fails at once and is retried after an asynchronous sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import TextClause, create_engine, event, make_url, text
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

SQLITE_LOCK_WAIT = 10.0  # seconds a writer waits for another process's write lock

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class Conn(Protocol):
    """What repositories use of a database connection."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(
        self, statement: Executable, parameters: Params = None
    ) -> CursorResult[Any]: ...


class _InlineConn:
    """A synchronous SQLAlchemy connection behind the ``Conn`` interface."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Executable, parameters: Params = None) -> CursorResult[Any]:
        return self._conn.execute(statement, parameters)


class Database:
    """One engine plus the transaction discipline above."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._sqlite: Engine | None = None
        self._async: AsyncEngine | None = None
        if self.is_sqlite:
            sync_url = make_url(url).set(drivername="sqlite")
            self._sqlite = create_engine(sync_url, echo=echo, pool_size=8, max_overflow=8)
            _install_sqlite_hooks(self._sqlite)
            self._write_lock = asyncio.Lock()
            self._writer: Connection | None = None  # the one connection that writes
            self._reader: Connection | None = None  # the one connection that reads
            self._batch: asyncio.Future[None] | None = None
        else:
            self._async = create_async_engine(
                url, echo=echo, pool_size=10, max_overflow=20, pool_recycle=1800
            )

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """One read-write transaction: committed on success, rolled back on error.

        Returns only once the change is committed. On SQLite, writers that run in the
        same turn of the event loop share one transaction (group commit), each in a
        savepoint of its own: a writer's failure rolls back only its own changes, and
        the commit, which costs more than a session create's statements together, is
        paid once per turn instead of once per writer.
        """
        if self._async is not None:
            async with self._async.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            batch = await self._join_batch()
            writer = self._writer
            assert writer is not None
            control = _control(writer)
            control("SAVEPOINT writer")
            try:
                yield _InlineConn(writer)
            except BaseException:
                control("ROLLBACK TO writer")
                control("RELEASE writer")
                raise
            control("RELEASE writer")
        await asyncio.shield(batch)

    async def _join_batch(self) -> asyncio.Future[None]:
        """The open transaction's commit, beginning one (and scheduling its commit for
        the end of this loop turn) if none is open."""
        if self._batch is not None:
            return self._batch
        assert self._sqlite is not None
        if self._writer is None:
            self._writer = self._sqlite.connect()
        await _begin_immediate(self._writer)
        loop = asyncio.get_running_loop()
        self._batch = loop.create_future()
        loop.call_soon(self._commit_batch)
        return self._batch

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, None
        assert batch is not None and self._writer is not None
        try:
            _control(self._writer)("COMMIT")
        except Exception as exc:  # e.g. disk full: every writer of the batch must know
            with contextlib.suppress(Exception):
                _control(self._writer)("ROLLBACK")
            batch.set_exception(exc)
            return
        batch.set_result(None)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """A connection for reads outside any transaction (each statement sees the
        latest committed data)."""
        if self._async is not None:
            async with self._async.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            return
        assert self._sqlite is not None
        # One connection serves every reader: statements run inline, each on a cursor
        # of its own, and the driver is in autocommit, so each sees the latest commit.
        # (A pool checkout per read measured as half of a call's routing.)
        if self._reader is None:
            self._reader = self._sqlite.connect()
        yield _InlineConn(self._reader)

    async def lock_keys(
        self, conn: Conn, keys: Iterable[str], *, generic_plans: bool = False
    ) -> None:
        """Serialise transactions that touch the same keys (PostgreSQL advisory locks,
        released at commit). Sorted, so two transactions never wait on each other in a
        cycle. On SQLite, ``write`` is already serial and this does nothing.

        ``generic_plans``: in the same round trip, have PostgreSQL plan the rest of the
        transaction's statements once per connection (``plan_cache_mode``, local to the
        transaction) instead of at every execution: for statements that take longer to
        plan than to run, and whose one plan suits every parameter."""
        if self.is_sqlite:
            return
        ids = sorted({_lock_id(key) for key in keys})
        if ids or generic_plans:  # PostgreSQL evaluates the select list left to right
            params: dict[str, Any] = {f"k{i}": k for i, k in enumerate(ids)}
            await conn.execute(_advisory_locks(len(ids), generic_plans), params)

    async def dispose(self) -> None:
        if self._async is not None:
            await self._async.dispose()
        if self._sqlite is not None:
            if self._batch is not None:
                # A writer that failed leaves before its turn's commit has run, and the
                # others of that turn still wait for it: let it run before closing.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._batch)
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            self._writer = self._reader = None
            self._sqlite.dispose()


async def _begin_immediate(conn: Connection) -> None:
    """BEGIN IMMEDIATE, waiting asynchronously while another process holds the lock."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    delay = 0.001
    while True:
        try:
            _control(conn)("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def _control(conn: Connection) -> Callable[[str], Any]:
    """Run a transaction-control statement on the driver connection directly: SQLAlchemy
    does not track Veil's BEGIN/SAVEPOINT/COMMIT (the driver is in autocommit mode), and
    going through it costs more than SQLite's own work for these statements."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.execute  # type: ignore[no-any-return]


@functools.cache
def _advisory_locks(count: int, generic_plans: bool) -> TextClause:
    calls = [f"pg_advisory_xact_lock(:k{i})" for i in range(count)]
    if generic_plans:
        calls.insert(0, "set_config('plan_cache_mode', 'force_generic_plan', true)")
    return text(f"SELECT {', '.join(calls)}")


def _lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver: every BEGIN and COMMIT is Veil's own (SQLAlchemy's
        # documented recipe for pysqlite), and reads run outside transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Setting the journal mode takes a lock even when it is already WAL; reading it
        # does not, so a connection can open while another process writes.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        for pragma in (
            "synchronous=NORMAL",  # durable against process crashes; see README
            "foreign_keys=ON",
            "busy_timeout=0",  # never block the event loop: see _begin_immediate
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
