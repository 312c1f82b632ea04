"""infobip-style number masking: actions and configurations, credentials, audio files,
number keys and owners, JSON deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

import veil.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = veil.store.tables.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "masking_configs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("status_url", sa.Text(), nullable=False),
        sa.Column("backup_callback_url", sa.Text(), nullable=False),
        sa.Column("backup_status_url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("insert_time", _TIME(), nullable=False),
        sa.Column("update_time", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_masking_configs_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_masking_configs")),
        sa.UniqueConstraint("key", name=op.f("uq_masking_configs_key")),
    )
    op.create_index("ix_masking_configs_account", "masking_configs", ["account_id", "id"])
    op.create_table(
        "masking_credentials",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("api_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_masking_credentials_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_masking_credentials")),
    )
    op.create_table(
        "masking_files",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_time", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_masking_files_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_masking_files")),
        sa.UniqueConstraint("file_id", name=op.f("uq_masking_files_file_id")),
    )
    op.create_index("ix_masking_files_account_id", "masking_files", ["account_id"])

    # Every existing number gets its key before the column becomes required.
    with op.batch_alter_table("numbers") as batch:
        batch.add_column(sa.Column("number_key", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("masking_config_id", _ID, nullable=True))
    conn = op.get_bind()
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM numbers"))]
    for number_id in ids:
        conn.execute(
            sa.text("UPDATE numbers SET number_key = :key WHERE id = :id"),
            {"key": uuid.uuid4().hex.upper(), "id": number_id},
        )
    with op.batch_alter_table("numbers") as batch:
        batch.alter_column("number_key", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint(op.f("uq_numbers_number_key"), ["number_key"])
        batch.create_foreign_key(
            op.f("fk_numbers_masking_config_id_masking_configs"),
            "masking_configs",
            ["masking_config_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_numbers_masking_config_id", ["masking_config_id"])

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("format", sa.String(length=8), nullable=False, server_default="plivo")
        )
    # "Authorization: App <api key>" finds the account by its token.
    op.create_index("ix_accounts_auth_token", "accounts", ["auth_token"])


def downgrade() -> None:
    op.drop_index("ix_accounts_auth_token", table_name="accounts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("format")
    with op.batch_alter_table("numbers") as batch:
        batch.drop_index("ix_numbers_masking_config_id")
        batch.drop_constraint(
            op.f("fk_numbers_masking_config_id_masking_configs"), type_="foreignkey"
        )
        batch.drop_constraint(op.f("uq_numbers_number_key"), type_="unique")
        batch.drop_column("masking_config_id")
        batch.drop_column("number_key")
    op.drop_index("ix_masking_files_account_id", table_name="masking_files")
    op.drop_table("masking_files")
    op.drop_table("masking_credentials")
    op.drop_index("ix_masking_configs_account", table_name="masking_configs")
    op.drop_table("masking_configs")
