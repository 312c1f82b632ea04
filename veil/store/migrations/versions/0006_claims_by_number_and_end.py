"""an index for the allocator's load of a candidate number: its claims' ends

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


def downgrade() -> None:
    op.drop_index("ix_number_claims_number_busy", table_name="number_claims")
