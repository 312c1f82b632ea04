"""One page of a list resource, newest first, with the total Plivo's ``meta`` reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, func, select

from veil.domain.list_filters import Bound, Op
from veil.store.db import Conn


async def newest_first(
    conn: Conn,
    query: Select[Any],
    table: Table,
    where: Sequence[ColumnElement[bool]],
    newest: ColumnElement[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[list[Row[Any]], int]:
    """The rows of ``query`` matching ``where``, newest first (``table``'s id breaks
    ties, so pages never overlap), and how many match in all."""
    total = (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    rows = await conn.execute(
        query.where(*where).order_by(newest.desc(), table.c.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


def bound_clause(column: Any, bound: Bound) -> ColumnElement[bool]:
    """A list filter's bound on ``column`` (``__gt``, ``__lte``, ... as Plivo's lists
    read them: a bare value matches its whole unit, so ``gt`` starts after it)."""
    match bound.op:
        case Op.EQ:
            clause: ColumnElement[bool] = (column >= bound.value) & (column < bound.end)
        case Op.GT:
            clause = column >= bound.end
        case Op.GTE:
            clause = column >= bound.value
        case Op.LT:
            clause = column < bound.value
        case Op.LTE:
            clause = column < bound.end
    return clause
