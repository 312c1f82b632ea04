"""indexes for allocation: a pool's numbers in id order, for each shape of pool (main
account or subaccount scope, with or without a country), instead of ix_numbers_pool; an
account's numbers in id order; the Infobip configurations' numbers without the NULLs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_MAIN, _SCOPED = "subaccount_id IS NULL", "subaccount_id IS NOT NULL"
_INDEXES = (
    ("ix_numbers_main_order", ["account_id", "id"], _MAIN),
    ("ix_numbers_main_country_order", ["account_id", "country", "id"], _MAIN),
    ("ix_numbers_sub_order", ["subaccount_id", "id"], _SCOPED),
    ("ix_numbers_sub_country_order", ["subaccount_id", "country", "id"], _SCOPED),
)


_LINKED = "ix_numbers_masking_config_id"


_POOL = "ix_numbers_pool"
_ACCOUNT = "ix_numbers_account"


def upgrade() -> None:
    op.drop_index(_POOL, table_name="numbers")
    op.create_index(_ACCOUNT, "numbers", ["account_id", "id"])
    for name, columns, where in _INDEXES:
        _create(name, columns, where)
    op.drop_index(_LINKED, table_name="numbers")
    _create(_LINKED, ["masking_config_id"], "masking_config_id IS NOT NULL")


def downgrade() -> None:
    op.drop_index(_LINKED, table_name="numbers")
    op.create_index(_LINKED, "numbers", ["masking_config_id"])
    for name, _, _ in _INDEXES:
        op.drop_index(name, table_name="numbers")
    op.drop_index(_ACCOUNT, table_name="numbers")
    op.create_index(_POOL, "numbers", ["account_id", "subaccount_id", "country"])


def _create(name: str, columns: list[str], where: str) -> None:
    predicate = sa.text(where)
    op.create_index(name, "numbers", columns, sqlite_where=predicate, postgresql_where=predicate)
