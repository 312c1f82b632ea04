"""webhook delivery: outbox leases and backup URL, and the attempt history

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veil.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_until", veil.store.tables.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("backup_url", sa.Text(), nullable=True))
    op.create_table(
        "delivery_attempts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", _ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("time", veil.store.tables.UtcDateTime(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_delivery_attempts_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index("ix_delivery_attempts_outbox", "delivery_attempts", ["outbox_id", "attempt"])
    # An account's recent deliveries (the Webhook resource), newest first.
    op.create_index("ix_outbox_account_created", "outbox", ["account_id", "created_time"])


def downgrade() -> None:
    op.drop_index("ix_outbox_account_created", table_name="outbox")
    op.drop_index("ix_delivery_attempts_outbox", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("backup_url")
        batch.drop_column("lease_owner")
        batch.drop_column("lease_until")
