"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veil.store.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("auth_id", sa.String(length=20), nullable=False),
        sa.Column("auth_token", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("modified_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["accounts.id"], name=op.f("fk_accounts_parent_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("auth_id", name=op.f("uq_accounts_auth_id")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "numbers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "subaccount_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=True),
        sa.Column("carrier", sa.String(length=255), nullable=False),
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("number_type", sa.String(length=32), nullable=False),
        sa.Column("added_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_numbers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["subaccount_id"], ["accounts.id"], name=op.f("fk_numbers_subaccount_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_numbers")),
        sa.UniqueConstraint("e164", name=op.f("uq_numbers_e164")),
    )
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_numbers_pool", ["account_id", "subaccount_id", "country"], unique=False
        )

    op.create_table(
        "sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "main_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("subaccount", sa.String(length=20), nullable=False),
        sa.Column("number_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("virtual_number", sa.String(length=16), nullable=False),
        sa.Column("first_party", sa.String(length=16), nullable=False),
        sa.Column("second_party", sa.String(length=16), nullable=False),
        sa.Column("pair_key", sa.String(length=33), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("modified_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expiry_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("call_time_limit", sa.Integer(), nullable=False),
        sa.Column("ring_timeout", sa.Integer(), nullable=False),
        sa.Column("record", sa.Boolean(), nullable=False),
        sa.Column("record_file_format", sa.String(length=8), nullable=False),
        sa.Column("recording_callback_url", sa.Text(), nullable=False),
        sa.Column("recording_callback_method", sa.String(length=8), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("callback_method", sa.String(length=8), nullable=False),
        sa.Column("initiate_call_to_first_party", sa.Boolean(), nullable=False),
        sa.Column("first_party_play_url", sa.Text(), nullable=False),
        sa.Column("second_party_play_url", sa.Text(), nullable=False),
        sa.Column("is_pin_authentication_required", sa.Boolean(), nullable=False),
        sa.Column("generate_pin", sa.Boolean(), nullable=False),
        sa.Column("generate_pin_length", sa.Integer(), nullable=False),
        sa.Column("first_party_pin", sa.String(length=15), nullable=False),
        sa.Column("second_party_pin", sa.String(length=15), nullable=False),
        sa.Column("pin_prompt_play", sa.Text(), nullable=False),
        sa.Column("pin_retry", sa.Integer(), nullable=False),
        sa.Column("pin_retry_wait", sa.Integer(), nullable=False),
        sa.Column("incorrect_pin_play", sa.Text(), nullable=False),
        sa.Column("unknown_caller_play", sa.Text(), nullable=False),
        sa.Column("geomatch", sa.Boolean(), nullable=False),
        sa.Column("force_pin_authentication", sa.Boolean(), nullable=False),
        sa.Column("create_session_with_single_party", sa.Boolean(), nullable=False),
        sa.Column("virtual_number_cooloff_period", sa.Integer(), nullable=False),
        sa.Column("total_call_count", sa.Integer(), nullable=False),
        sa.Column("total_call_billed_duration", sa.Integer(), nullable=False),
        sa.Column(
            "last_interaction_time", veil.store.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("event_sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sessions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["main_account_id"], ["accounts.id"], name=op.f("fk_sessions_main_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["numbers.id"],
            name=op.f("fk_sessions_number_id_numbers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sessions_uuid")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_due", ["status", "expiry_time"], unique=False)
        batch_op.create_index(
            "ix_sessions_first_party", ["main_account_id", "first_party"], unique=False
        )
        batch_op.create_index(
            "ix_sessions_listing", ["main_account_id", "created_time"], unique=False
        )
        batch_op.create_index("ix_sessions_number", ["number_id"], unique=False)
        batch_op.create_index("ix_sessions_pair", ["main_account_id", "pair_key"], unique=False)
        batch_op.create_index(
            "ix_sessions_second_party", ["main_account_id", "second_party"], unique=False
        )

    op.create_table(
        "number_claims",
        sa.Column("key", sa.String(length=24), nullable=False),
        sa.Column(
            "number_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("busy_until", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["numbers.id"],
            name=op.f("fk_number_claims_number_id_numbers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_number_claims_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("key", "number_id", name=op.f("pk_number_claims")),
    )
    with op.batch_alter_table("number_claims", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_number_claims_busy_until"), ["busy_until"], unique=False
        )
        batch_op.create_index("ix_number_claims_number_key", ["number_id", "key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_number_claims_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_time", veil.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("delivered_time", veil.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_outbox_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_outbox_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_time"], unique=False)
        batch_op.create_index("ix_outbox_session", ["session_id", "sequence"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_session")
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_index(batch_op.f("ix_outbox_account_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("number_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_claims_session_id"))
        batch_op.drop_index("ix_number_claims_number_key")
        batch_op.drop_index(batch_op.f("ix_number_claims_busy_until"))

    op.drop_table("number_claims")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_second_party")
        batch_op.drop_index("ix_sessions_pair")
        batch_op.drop_index("ix_sessions_number")
        batch_op.drop_index("ix_sessions_listing")
        batch_op.drop_index("ix_sessions_first_party")
        batch_op.drop_index("ix_sessions_due")

    op.drop_table("sessions")
    with op.batch_alter_table("numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_numbers_pool")

    op.drop_table("numbers")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_parent_id"))

    op.drop_table("accounts")
