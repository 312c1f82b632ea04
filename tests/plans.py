"""A statement as the driver receives it, for reading its plan (the bench and the tests):
a statement with literals in place of its parameters could plan differently."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


def driver_form(
    statement: ClauseElement, dialect: Dialect, params: dict[str, Any] | None
) -> tuple[str, tuple[Any, ...]]:
    """The SQL string and the positional parameters, converted as on execution."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    values = compiled.construct_params(params) or {}
    processors: dict[str, Any] = dict(compiled._bind_processors)
    positional = tuple(
        processors[n](values[n]) if n in processors else values[n]
        for n in compiled.positiontup or ()
    )
    return compiled.string, positional
