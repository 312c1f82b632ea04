"""The PostgreSQL transaction discipline of veil.store.db: Veil sends BEGIN itself (with
the locks when they come first), runs ``Hot`` statements through asyncpg, and never
returns a connection to the pool inside a transaction or broken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, column, insert, literal, select, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from tests.servers import postgres_database
from veil.store.db import Conn, Database, DriverForm, Hot
from veil.store.tables import accounts

POLLS = 500  # polls of 10 ms for the server to show what a test waits for


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_database() as database_url:
        yield database_url


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


def logged(conn: Conn) -> list[str]:
    """The SQL this connection sends from now on, as asyncpg sends it (for as long as
    the pooled connection lives: copy the list to keep what one write sent)."""
    queries: list[str] = []
    driver: Any = getattr(conn, "driver")  # noqa: B009 (not part of Conn)
    driver.add_query_logger(lambda record: queries.append(record.query))
    return queries


async def add_account(conn: Conn, name: str) -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    await conn.execute(
        insert(accounts).values(
            auth_id="MA" + name.upper().ljust(18, "X"),
            auth_token="t",
            name=name,
            enabled=True,
            created_time=now,
            modified_time=now,
        )
    )


async def account_names(db: Database) -> list[str]:
    async with db.read() as conn:
        result = await conn.execute(select(accounts.c.name).order_by(accounts.c.name))
        return list(result.scalars())


async def scalar(db: Database, sql: str) -> Any:
    async with db.read() as conn:
        return (await conn.execute(text(sql))).scalar()


async def idle_in_transaction(db: Database) -> int:
    return int(
        await scalar(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%'",
        )
    )


def test_begin_goes_out_with_the_locks_and_a_write_without_statements_sends_nothing(
    url: str,
) -> None:
    async def scenario() -> tuple[list[str], list[str], int]:
        async with opened(url) as db:
            async with db.write() as conn:
                sent_by_first = logged(conn)
            idle = list(sent_by_first)
            async with db.write() as conn:
                sent = logged(conn)
                await db.lock_keys(conn, ["a", "b"])
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
                locks = await scalar(
                    db, f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = {pid}"
                )
                await add_account(conn, "locked")
            return idle, sent, int(locks)

    idle, sent, locks = asyncio.run(scenario())
    assert idle == []
    assert sent[0].startswith("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT ")
    assert sent[0].count("pg_advisory_xact_lock(") == 2
    assert sent[-1] == "COMMIT"
    assert not any(query.strip().upper().startswith("BEGIN") for query in sent[1:])
    assert locks == 2  # held by the transaction until its COMMIT


def test_begin_goes_out_alone_before_any_other_first_statement(url: str) -> None:
    async def scenario() -> list[str]:
        async with opened(url) as db:
            async with db.write() as conn:
                sent = logged(conn)
                await add_account(conn, "plain")
            return sent

    sent = asyncio.run(scenario())
    assert sent[0] == "BEGIN ISOLATION LEVEL READ COMMITTED"
    assert sent[-1] == "COMMIT"


def test_a_failing_writer_rolls_back_and_leaves_no_transaction_open(url: str) -> None:
    async def scenario() -> tuple[list[str], list[str], int]:
        async with opened(url) as db:
            sent: list[str] = []
            with pytest.raises(RuntimeError):
                async with db.write() as conn:
                    sent = logged(conn)
                    await add_account(conn, "rolled back")
                    raise RuntimeError("after the insert")
            return sent, await account_names(db), await idle_in_transaction(db)

    sent, names, idle = asyncio.run(scenario())
    assert sent[-1] == "ROLLBACK"
    assert "rolled back" not in names
    assert idle == 0


def test_a_connection_that_broke_in_a_transaction_is_not_reused(url: str) -> None:
    # The server ends the transaction's backend. Without discarding that connection, the
    # next write would get it from the pool and fail at its BEGIN.
    async def scenario() -> list[str]:
        async with opened(url) as db:
            with pytest.raises(Exception) as broken:
                async with db.write() as conn:
                    await add_account(conn, "lost")
                    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
                    await scalar(db, f"SELECT pg_terminate_backend({pid})")
                    await db.lock_keys(conn, ["after"])
            # The driver's error: which one depends on when asyncpg reads the server's
            # goodbye (ConnectionDoesNotExistError, InternalClientError, ...).
            assert type(broken.value).__module__.startswith("asyncpg.")
            async with db.write() as conn:
                await add_account(conn, "next")
            return await account_names(db)

    names = asyncio.run(scenario())
    assert "next" in names
    assert "lost" not in names


def test_a_cancelled_writer_leaves_nothing_open(url: str) -> None:
    async def scenario() -> tuple[list[str], int, int]:
        async with opened(url) as db:

            async def sleeper() -> None:
                async with db.write() as conn:
                    await add_account(conn, "cancelled")
                    await conn.run("SELECT pg_sleep(60)")

            task = asyncio.create_task(sleeper())
            sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
            for _ in range(POLLS):
                if await scalar(db, sleeping):
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async with db.write() as conn:
                await add_account(conn, "after")
            still = 1
            for _ in range(POLLS):
                still = int(await scalar(db, sleeping + " AND state = 'active'"))
                if not still:
                    break
                await asyncio.sleep(0.01)
            return await account_names(db), still, await idle_in_transaction(db)

    names, still_sleeping, idle = asyncio.run(scenario())
    assert "cancelled" not in names
    assert "after" in names
    assert still_sleeping == 0
    assert idle == 0


def test_a_hot_statement_reads_what_sqlalchemy_reads(url: str) -> None:
    # Bound defaults (literal), bind processors and result processors (UtcDateTime's
    # aware datetimes) as SQLAlchemy applies them.
    statement = Hot(
        select(
            accounts.c.name,
            accounts.c.created_time,
            literal(7).label("seven"),
        ).where(accounts.c.name == bindparam("name"))
    )

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with opened(url) as db:
            async with db.write() as conn:
                await add_account(conn, "hot")
            async with db.write() as conn:
                hot = [dict(row) for row in await conn.fetch(statement, {"name": "hot"})]
                plain = await conn.execute(statement.statement, {"name": "hot"})
                return hot, [dict(row) for row in plain.mappings()]

    hot, plain = asyncio.run(scenario())
    assert hot == plain
    assert hot == [{"name": "hot", "created_time": datetime(2024, 1, 1, tzinfo=UTC), "seven": 7}]
    assert hot[0]["created_time"].tzinfo is UTC


def test_a_driver_form_needs_every_parameter_and_plain_ones_only() -> None:
    dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    form = DriverForm.of(
        select(column("a")).where(column("a") == bindparam("a"), column("b") == literal(2)),
        dialect,
    )
    assert form.positional({"a": 1}) == (1, 2)
    with pytest.raises(ValueError, match="no value for the bound parameter 'a'"):
        form.positional({})
    with pytest.raises(ValueError, match="plain parameters only"):
        DriverForm.of(select(column("a")).where(column("a").in_([1, 2])), dialect)
