"""A statement as the driver receives it, for reading its plan (the bench and the tests):
a statement with literals in place of its parameters could plan differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

from veil.store.db import DriverForm, Hot


def driver_form(
    statement: Hot | Executable, dialect: Dialect, params: dict[str, Any] | None
) -> tuple[str, tuple[Any, ...]]:
    """The SQL string and the positional parameters, converted as on execution."""
    form = (
        statement.driver_form(dialect)
        if isinstance(statement, Hot)
        else DriverForm.of(statement, dialect)
    )
    return form.sql, form.positional(params)
