"""An aiosqlite-compatible connection that runs SQLite calls inline, on the event loop.

Why: aiosqlite runs every call (cursor, execute, fetch, close, commit) in a worker
thread and wakes the loop for each result; SQLAlchemy makes several such calls per
statement, so a session create costs some 25 thread round trips, which measured as the
largest part of its time. A point query on a local WAL-mode SQLite file takes tens of
microseconds: cheaper to run directly than to hand to a thread.

What keeps the loop from stalling: Veil serialises its own writers (``Database.write``),
WAL readers never wait for the writer, and ``busy_timeout`` is 0 here, so a lock held by
another process (the CLI) fails fast with "database is locked" and ``Database.write``
retries after an asynchronous sleep instead of blocking the loop.

SQLAlchemy's aiosqlite dialect drives this through its ``async_creator`` hook; only the
part of aiosqlite's interface that the dialect uses is provided.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` SQLAlchemy's aiosqlite dialect calls."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # the dialect checks this before commit/rollback

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self._conn.close()
        self._connection = None  # type: ignore[assignment]

    def stop(self) -> None:
        self._conn.close()


async def connect(path: str) -> InlineConnection:
    """Open ``path`` in autocommit mode: Veil emits BEGIN itself (see store.db)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, detect_types=0)
    return InlineConnection(conn)
