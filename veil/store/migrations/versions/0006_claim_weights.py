"""number claims carry the weight the allocator ranks numbers by

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing claims weigh 0: they rank like first-fit until they end.
    with op.batch_alter_table("number_claims") as batch:
        batch.add_column(sa.Column("weight", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("number_claims") as batch:
        batch.drop_column("weight")
