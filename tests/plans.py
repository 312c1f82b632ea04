"""The plans of an allocation's statements, for the bench and the tests: each statement
as the driver receives it (a statement with literals in place of its parameters could
plan differently), planned as the allocation plans it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.sql import Executable

from veil.domain.accounts import Account
from veil.domain.session_params import SessionRequest
from veil.service import sessions
from veil.service.context import ServiceContext
from veil.store.db import Conn, Database, DriverForm, Hot, Params
from veil.store.sessions import ALLOCATION_PLANNER


def driver_form(
    statement: Hot | Executable, dialect: Dialect, params: Mapping[str, Any] | None
) -> tuple[str, tuple[Any, ...]]:
    """The SQL string and the positional parameters, converted as on execution."""
    form = (
        statement.driver_form(dialect)
        if isinstance(statement, Hot)
        else DriverForm.of(statement, dialect)
    )
    return form.sql, form.positional(params)


class _Rollback(Exception):
    """Raised inside ``Database.write`` to roll its transaction back."""


@dataclass
class _Recorder:
    """A ``Conn`` that passes everything on and keeps the ``Hot`` statements it ran."""

    conn: Conn
    hot: list[tuple[Hot, Mapping[str, Any]]] = field(default_factory=list)

    @property
    def dialect(self) -> Dialect:
        return self.conn.dialect

    async def execute(self, statement: Executable, parameters: Params = None) -> CursorResult[Any]:
        return await self.conn.execute(statement, parameters)

    async def fetch(
        self, statement: Hot, parameters: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        self.hot.append((statement, parameters))
        return await self.conn.fetch(statement, parameters)

    async def run(self, sql: str) -> None:
        await self.conn.run(sql)


async def allocation_statements(
    ctx: ServiceContext, owner: Account, request: SessionRequest
) -> list[tuple[Hot, Mapping[str, Any]]]:
    """The ``Hot`` statements one allocation for ``request`` runs, with their parameters
    (in a transaction that is rolled back)."""
    recorder = None
    with suppress(_Rollback):
        async with ctx.db.write() as conn:
            recorder = _Recorder(conn)
            await sessions._allocate(ctx, recorder, owner, request)
            raise _Rollback
    assert recorder is not None
    return recorder.hot


async def explain(db: Database, statement: Hot, params: Mapping[str, Any]) -> str:
    """SQLite's query plan, or PostgreSQL's generic plan as the allocation's transaction
    makes it (``ALLOCATION_PLANNER``), run (EXPLAIN ANALYZE) in a transaction that is
    rolled back: the statement may insert."""
    plan = ""
    with suppress(_Rollback):
        async with db.write() as conn:
            sql, positional = driver_form(statement, conn.dialect, params)
            if db.is_sqlite:
                raw: Any = getattr(conn, "_conn", conn)  # the inline Connection
                rows = raw.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, positional)
                plan = "\n".join(str(row[-1]) for row in rows)
                raise _Rollback
            settings = "; ".join(f"SET LOCAL {n} = {v}" for n, v in ALLOCATION_PLANNER.items())
            await conn.run(settings)  # and BEGIN
            driver = cast(Any, conn).driver  # asyncpg's connection
            await driver.execute("PREPARE planned AS " + sql)
            args = ", ".join(_literal(v) for v in positional)
            rows = await driver.fetch(f"EXPLAIN (ANALYZE) EXECUTE planned({args})")
            plan = "\n".join(str(row[0]) for row in rows)
            await driver.execute("DEALLOCATE planned")
            raise _Rollback
    return plan


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"
