"""calls: interactions and the in-progress counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veil.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("calls_in_progress", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "interactions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("session_id", _ID, nullable=False),
        sa.Column("caller_role", sa.String(length=8), nullable=False),
        sa.Column("start_time", veil.store.tables.UtcDateTime(), nullable=False),
        sa.Column("answer_time", veil.store.tables.UtcDateTime(), nullable=True),
        sa.Column("end_time", veil.store.tables.UtcDateTime(), nullable=False),
        sa.Column("first_party_call_uuid", sa.String(length=36), nullable=True),
        sa.Column("second_party_call_uuid", sa.String(length=36), nullable=True),
        sa.Column("first_party_status", sa.String(length=16), nullable=False),
        sa.Column("second_party_status", sa.String(length=16), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("billed_duration", sa.Integer(), nullable=False),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.Column("hangup_cause", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_interactions_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
        sa.UniqueConstraint("uuid", name=op.f("uq_interactions_uuid")),
    )
    op.create_index("ix_interactions_session", "interactions", ["session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_interactions_session", table_name="interactions")
    op.drop_table("interactions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("calls_in_progress")
