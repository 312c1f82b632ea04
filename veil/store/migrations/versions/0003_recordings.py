"""recordings: the Recording resource and each interaction's link to its recording

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veil.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("recording_id", sa.String(length=36), nullable=True))
    op.create_table(
        "recordings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("main_account_id", _ID, nullable=False),
        sa.Column("session_id", _ID, nullable=False),
        sa.Column("interaction_uuid", sa.String(length=36), nullable=False),
        sa.Column("call_uuid", sa.String(length=36), nullable=False),
        sa.Column("recording_type", sa.String(length=16), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("start_time", veil.store.tables.UtcDateTime(), nullable=False),
        sa.Column("end_time", veil.store.tables.UtcDateTime(), nullable=False),
        sa.Column("from_number", sa.String(length=16), nullable=False),
        sa.Column("to_number", sa.String(length=16), nullable=False),
        sa.Column("add_time", veil.store.tables.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_recordings_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["main_account_id"],
            ["accounts.id"],
            name=op.f("fk_recordings_main_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_recordings_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("recording_id", name=op.f("uq_recordings_recording_id")),
    )
    op.create_index("ix_recordings_listing", "recordings", ["main_account_id", "add_time"])
    op.create_index("ix_recordings_call", "recordings", ["call_uuid"])
    op.create_index("ix_recordings_session", "recordings", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_recordings_session", table_name="recordings")
    op.drop_index("ix_recordings_call", table_name="recordings")
    op.drop_index("ix_recordings_listing", table_name="recordings")
    op.drop_table("recordings")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("recording_id")
