"""indexes for allocation: a candidate number's claims by their end; a pair's sessions
newest first

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_number_claims_number_busy", "number_claims", ["number_id", "busy_until"])
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_pair")
        batch.create_index("ix_sessions_pair", ["main_account_id", "pair_key", "id"])


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_pair")
        batch.create_index("ix_sessions_pair", ["main_account_id", "pair_key"])
    op.drop_index("ix_number_claims_number_busy", table_name="number_claims")
