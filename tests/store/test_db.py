"""The SQLite side of veil.store.db: group commit with a savepoint per writer, waiting
for another process's write lock without blocking the event loop, and ``Hot``
statements run by sqlite3 directly."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, literal, select, text

from tests.servers import sqlite_database
from veil.store.db import Database, Hot
from veil.store.tables import UtcDateTime, accounts


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with sqlite_database(tmp_path) as database_url:
        yield database_url


def path_of(url: str) -> str:
    return url.split("///", 1)[1]


async def names(db: Database) -> list[str]:
    async with db.read() as conn:
        result = await conn.execute(text("SELECT name FROM accounts ORDER BY name"))
        return list(result.scalars())


async def add_account(db: Database, name: str, *, fail: bool = False) -> None:
    async with db.write() as conn:
        await conn.execute(
            text(
                "INSERT INTO accounts (auth_id, auth_token, name, enabled, created_time,"
                " modified_time) VALUES (:a, 't', :n, 1, '2024-01-01', '2024-01-01')"
            ),
            {"a": "MA" + name.upper().ljust(18, "X"), "n": name},
        )
        if fail:
            raise RuntimeError("this writer fails after its insert")


def test_a_failing_writer_rolls_back_only_its_own_changes(url: str) -> None:
    async def scenario() -> list[str]:
        db = Database(url)
        try:
            # Three writers in the same loop turn share one transaction.
            results = await asyncio.gather(
                add_account(db, "first"),
                add_account(db, "broken", fail=True),
                add_account(db, "third"),
                return_exceptions=True,
            )
            assert [type(r) for r in results] == [type(None), RuntimeError, type(None)]
            return await names(db)
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == ["first", "third"]


def test_writers_are_durable_when_write_returns(url: str) -> None:
    async def scenario() -> None:
        db = Database(url)
        try:
            await add_account(db, "durable")
        finally:
            await db.dispose()

    asyncio.run(scenario())
    # Another connection, after the first is gone, sees the row.
    with sqlite3.connect(path_of(url)) as other:
        assert other.execute("SELECT name FROM accounts").fetchall() == [("durable",)]


def test_closing_right_after_a_failed_writer_still_commits_its_turn(url: str) -> None:
    # A failing writer leaves at once, before its turn's commit has run; closing the
    # database then must let that commit run (the other writer of the turn is in it).
    errors: list[dict[str, object]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        db = Database(url)
        kept = asyncio.ensure_future(add_account(db, "kept"))
        await asyncio.sleep(0)  # "kept" has written and waits for the commit
        with pytest.raises(RuntimeError):
            await add_account(db, "broken", fail=True)
        await db.dispose()
        await kept
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert errors == []
    with sqlite3.connect(path_of(url)) as other:
        assert other.execute("SELECT name FROM accounts").fetchall() == [("kept",)]


def test_another_process_holding_the_lock_does_not_block_the_loop(url: str) -> None:
    holder = sqlite3.connect(path_of(url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as the CLI would while adding numbers

    async def scenario() -> tuple[int, list[str]]:
        db = Database(url)
        ticks = 0
        try:
            writer = asyncio.create_task(add_account(db, "waiting"))
            # The loop keeps turning while the writer waits for the lock...
            while ticks < 200:
                await asyncio.sleep(0)
                ticks += 1
            assert not writer.done()
            holder.execute("COMMIT")  # ...and the writer proceeds once it is released.
            await asyncio.wait_for(writer, 10)
            return ticks, await names(db)
        finally:
            await db.dispose()

    ticks, found = asyncio.run(scenario())
    holder.close()
    assert ticks == 200 and found == ["waiting"]


def test_a_hot_statement_reads_what_sqlalchemy_reads(url: str) -> None:
    # sqlite3 directly: SQLite's text datetimes become aware UTC datetimes, as through
    # SQLAlchemy (bind and result processors of UtcDateTime and SQLite's DateTime).
    statement = Hot(
        select(accounts.c.name, accounts.c.created_time, literal(7).label("seven")).where(
            accounts.c.created_time >= bindparam("since", type_=UtcDateTime)
        )
    )
    since = {"since": datetime(2023, 12, 31, tzinfo=UTC)}

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        db = Database(url)
        try:
            await add_account(db, "hot")
            async with db.read() as conn:
                hot = [dict(row) for row in await conn.fetch(statement, since)]
                plain = await conn.execute(statement.statement, since)
                return hot, [dict(row) for row in plain.mappings()]
        finally:
            await db.dispose()

    hot, plain = asyncio.run(scenario())
    assert hot == plain
    assert hot == [{"name": "hot", "created_time": datetime(2024, 1, 1, tzinfo=UTC), "seven": 7}]
