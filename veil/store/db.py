"""The database handle: engine setup and the two ways to use it, ``read`` and ``write``.

Repositories see one small interface, ``Conn`` (``await conn.execute(statement, params)``),
behind which the two databases are driven differently:

- **PostgreSQL** through SQLAlchemy's asyncio engine and asyncpg. Writers run
  concurrently; what must not interleave (allocations that share a party) takes a
  transaction-scoped advisory lock, see ``lock_keys``. Veil sends BEGIN itself, in the
  same round trip as the transaction's first statement when that is ``lock_keys``: see
  ``_PostgresConn``. On both databases the hottest statements (``Hot``) go to the
  driver directly.
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
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

SQLITE_LOCK_WAIT = 10.0  # seconds a writer waits for another process's write lock

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class Hot:
    """A statement that runs on every session create, compiled once per dialect
    (``driver_form``) and run by the driver directly (asyncpg; sqlite3).

    SQLAlchemy's work per execution (the statement's cache key, its parameters and
    result rows wrapped and converted) measured as two thirds of an allocation's client
    CPU on PostgreSQL, more than the round trips themselves. The statement must bind
    only plain parameters (no expanding IN, no literal_execute)."""

    __slots__ = ("_forms", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: dict[str, DriverForm] = {}

    def driver_form(self, dialect: Dialect) -> DriverForm:
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = DriverForm.of(self.statement, dialect)
        return form


class DriverForm:
    """A statement as the driver receives it: its SQL string, and how to turn named
    parameters into the driver's positional ones and the driver's rows back into
    Python values, as SQLAlchemy would (type processors included)."""

    __slots__ = ("_binds", "_defaults", "_names", "_results", "sql")

    def __init__(self, compiled: SQLCompiler) -> None:
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a driver-form statement binds plain parameters only")
        dialect = compiled.dialect
        self.sql = compiled.string
        self._names = tuple(compiled.positiontup or ())
        binds: dict[str, Any] = dict(compiled._bind_processors)
        self._binds = tuple(binds.get(name) for name in self._names)
        # Values the statement carries itself (``literal(0)``): what construct_params
        # would fill in, looked up once instead of at every execution.
        self._defaults = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        self._results = {
            column.keyname: column.type._cached_result_processor(dialect, None)
            for column in compiled._result_columns
        }

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> DriverForm:
        return cls(cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect)))

    def positional(self, params: Mapping[str, Any] | None) -> tuple[Any, ...]:
        """The parameters in the driver's order and types (bound defaults included)."""
        given = params or {}
        defaults = self._defaults
        try:
            values = [given[name] if name in given else defaults[name] for name in self._names]
        except KeyError as missing:
            raise ValueError(f"no value for the bound parameter {missing}") from None
        return tuple(
            value if bind is None else bind(value)
            for value, bind in zip(values, self._binds, strict=True)
        )

    def row(self, items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
        """A driver row, as (column name, value) pairs, with its values converted as
        SQLAlchemy would."""
        results = self._results
        return {
            name: value if (process := results.get(name)) is None else process(value)
            for name, value in items
        }


class Conn(Protocol):
    """What repositories use of a database connection."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(
        self, statement: Executable, parameters: Params = None
    ) -> CursorResult[Any]: ...

    async def fetch(
        self, statement: Hot, parameters: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        """The rows of a ``Hot`` statement, as mappings by column name."""
        ...

    async def run(self, sql: str) -> None:
        """SQL without parameters or rows, of one or more statements separated by ``;``
        on PostgreSQL (one round trip), one statement on SQLite."""
        ...


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

    async def fetch(
        self, statement: Hot, parameters: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        form = statement.driver_form(self.dialect)
        driver = self._conn.connection.driver_connection
        assert driver is not None
        cursor = driver.execute(form.sql, form.positional(parameters))
        names = [column[0] for column in cursor.description or ()]
        return [form.row(zip(names, values, strict=True)) for values in cursor.fetchall()]

    async def run(self, sql: str) -> None:
        _control(self._conn)(sql)


# Veil's statements rely on each one seeing what committed before it (a statement after
# ``lock_keys`` sees what the lock's previous holder wrote): said here, not left to the
# server's default_transaction_isolation.
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"


class _PostgresConn:
    """A pooled connection (SQLAlchemy's, in autocommit mode) behind the ``Conn``
    interface, with the transaction Veil runs on it, if any.

    In a transaction, BEGIN goes out with the first statement: as a prefix of ``run``'s
    SQL (a simple-protocol query may hold several statements; that is how ``lock_keys``
    costs no round trip of its own) or alone before any other; SQLAlchemy's asyncpg
    dialect sends BEGIN as a round trip of its own. A write that executes nothing sends
    neither BEGIN nor COMMIT.

    ``fetch`` sends a ``Hot`` statement to asyncpg itself (prepared, from asyncpg's
    statement cache); errors there are asyncpg's, not translated by SQLAlchemy."""

    __slots__ = ("_conn", "_driver", "_transaction", "begun")

    def __init__(self, conn: AsyncConnection, driver: Any, *, transaction: bool) -> None:
        self._conn = conn
        self._driver = driver
        self._transaction = transaction
        self.begun = False  # BEGIN sent (not necessarily answered: ROLLBACK is safe)

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: Executable, parameters: Params = None) -> CursorResult[Any]:
        await self._begin()
        return await self._conn.execute(statement, parameters)

    async def fetch(
        self, statement: Hot, parameters: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        await self._begin()
        form = statement.driver_form(self.dialect)
        records = await self._driver.fetch(form.sql, *form.positional(parameters))
        return [form.row(record.items()) for record in records]

    async def _begin(self) -> None:
        """BEGIN alone, before a first statement that cannot carry it (extended protocol)."""
        if self._transaction and not self.begun:
            await self.run(_BEGIN)

    async def run(self, sql: str) -> None:
        if self._transaction and not self.begun:
            self.begun = True
            if sql != _BEGIN:
                sql = f"{_BEGIN}; {sql}"
        await self._driver.execute(sql)

    @property
    def driver(self) -> Any:
        """The asyncpg connection (for tools: query logging, EXPLAIN)."""
        return self._driver

    async def end(self, sql: str) -> None:
        """COMMIT or ROLLBACK, if the transaction began. When that fails other than by
        the server's answer (the connection broke, or a cancelled statement left it
        busy), the connection is discarded rather than returned to the pool in an
        unknown state."""
        if not self.begun:
            return
        self.begun = False
        try:
            await self._driver.execute(sql)
        except BaseException as error:
            if not _answered(error) or self._driver.is_closed():
                await self._conn.invalidate()
            raise


def _answered(error: BaseException) -> bool:
    """An error the server reported, after which the connection is sound (a failed
    COMMIT has ended the transaction)."""
    return isinstance(error, asyncpg.PostgresError) and not isinstance(
        error, asyncpg.PostgresConnectionError
    )


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
            # Last in, first out: a lull's requests reuse the connection (and server
            # backend) used last, warm, instead of cycling through the pool; the rest can
            # idle. Measured at 0.1 ms less per allocation, and less client CPU.
            self._async = create_async_engine(
                url,
                echo=echo,
                pool_size=10,
                max_overflow=20,
                pool_recycle=1800,
                pool_use_lifo=True,
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
            async with self._postgres(transaction=True) as conn:
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(Exception):  # the caller's error matters
                        await conn.end("ROLLBACK")
                    raise
                await conn.end("COMMIT")
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
            async with self._postgres(transaction=False) as conn:
                yield conn
            return
        assert self._sqlite is not None
        # One connection serves every reader: statements run inline, each on a cursor
        # of its own, and the driver is in autocommit, so each sees the latest commit.
        # (A pool checkout per read measured as half of a call's routing.)
        if self._reader is None:
            self._reader = self._sqlite.connect()
        yield _InlineConn(self._reader)

    @contextlib.asynccontextmanager
    async def _postgres(self, *, transaction: bool) -> AsyncIterator[_PostgresConn]:
        """A pooled connection in autocommit mode: SQLAlchemy sends no BEGIN of its own
        and, when the connection goes back to the pool, no ROLLBACK."""
        assert self._async is not None
        async with self._async.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            raw = await conn.get_raw_connection()
            postgres = _PostgresConn(conn, raw.driver_connection, transaction=transaction)
            try:
                yield postgres
            except BaseException:
                # SQLAlchemy notices a broken connection only in its own statements.
                if postgres.driver.is_closed():
                    await conn.invalidate()
                raise

    async def lock_keys(
        self, conn: Conn, keys: Iterable[str], *, planner: Mapping[str, str] | None = None
    ) -> None:
        """Serialise transactions that touch the same keys (PostgreSQL advisory locks,
        released at commit). Sorted, so two transactions never wait on each other in a
        cycle. On SQLite, ``write`` is already serial and this does nothing.

        ``planner``: settings for the planner (``set_config``, local to the transaction),
        in the same round trip, for the statements that follow (see
        ``veil.store.sessions.ALLOCATION_PLANNER``)."""
        if self.is_sqlite:
            return
        # Integers written into the SQL: a simple-protocol query, which can carry the
        # transaction's BEGIN. PostgreSQL evaluates the select list left to right.
        calls = [_set_config(name, value) for name, value in (planner or {}).items()]
        calls += [f"pg_advisory_xact_lock({i})" for i in sorted({_lock_id(k) for k in keys})]
        if calls:
            await conn.run(f"SELECT {', '.join(calls)}")

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


def _set_config(name: str, value: str) -> str:
    # Names and values are Veil's own constants, never a request's.
    if not (name.replace("_", "").isalnum() and value.replace("_", "").isalnum()):
        raise ValueError(f"not a planner setting: {name}={value}")
    return f"set_config('{name}', '{value}', true)"


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
