"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/`` create it.

One schema serves SQLite (the embedded default) and PostgreSQL. Times are UTC:
``timestamptz`` on PostgreSQL, ISO text on SQLite, aware ``datetime`` in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect

from veil.domain.ids import new_number_key

# Stable constraint names, so that migrations can refer to them on both databases.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite has no time zone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


# BIGINT ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("auth_id", String(20), nullable=False, unique=True),
    # Kept in clear: webhook signatures (HMAC) need the token itself.
    Column("auth_token", String(64), nullable=False, index=True),  # also an "App" API key
    Column("name", String(255), nullable=False),
    Column("parent_id", Id, ForeignKey("accounts.id"), nullable=True, index=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_time", UtcDateTime, nullable=False),
    Column("modified_time", UtcDateTime, nullable=False),
)


def _numbers_indexes() -> list[Index]:
    main = text("subaccount_id IS NULL")
    scoped = text("subaccount_id IS NOT NULL")
    linked = text("masking_config_id IS NOT NULL")
    return [
        # An account's numbers, newest first (the number list).
        Index("ix_numbers_account", "account_id", "id"),
    ] + [
        Index(f"ix_numbers_{name}", *columns, sqlite_where=where, postgresql_where=where)
        for name, columns, where in (
            # A pool's numbers in id order, one index per shape of the allocator's query
            # (main account or subaccount scope, with or without a country); no other
            # index starts with a pool's columns, so no plan can read a pool and sort it.
            ("main_order", ("account_id", "id"), main),
            ("main_country_order", ("account_id", "country", "id"), main),
            ("sub_order", ("subaccount_id", "id"), scoped),
            ("sub_country_order", ("subaccount_id", "country", "id"), scoped),
            # An Infobip configuration's numbers. Without the NULLs: SQLite, which has no
            # statistics, would read the pool (masking_config_id IS NULL) from it.
            ("masking_config_id", ("masking_config_id",), linked),
        )
    ]


numbers = Table(
    "numbers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("e164", String(16), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    # Scope: only sessions of this subaccount may use the number. NULL: the main account's.
    Column("subaccount_id", Id, ForeignKey("accounts.id"), nullable=True),
    Column("country", String(2), nullable=False),
    Column("reserved", Boolean, nullable=False, default=False),
    Column("alias", String(255), nullable=True),
    Column("carrier", String(255), nullable=False, default=""),
    Column("region", String(255), nullable=False, default=""),
    Column("number_type", String(32), nullable=False, default="local"),
    Column("added_time", UtcDateTime, nullable=False),
    # Infobip's name for the number in its paths (/numbers/1/numbers/{numberKey}/...).
    Column("number_key", String(32), nullable=False, unique=True, default=new_number_key),
    # The number's owner when it is not the session pool: an Infobip action or
    # configuration asks the customer's callbackUrl what to do with each call.
    Column(
        "masking_config_id",
        Id,
        ForeignKey("masking_configs.id", ondelete="SET NULL"),
        nullable=True,
    ),
    *_numbers_indexes(),
)

# Infobip-style number masking: a v1 "action" (one number's callbackUrl and statusUrl)
# or a v2 "configuration" (named, linked to any numbers of the account).
masking_configs = Table(
    "masking_configs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(32), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # "action" (v1) or "config" (v2)
    Column("name", String(100), nullable=False),
    Column("callback_url", Text, nullable=False),
    Column("status_url", Text, nullable=False),
    Column("backup_callback_url", Text, nullable=False),
    Column("backup_status_url", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("insert_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Index("ix_masking_configs_account", "account_id", "id"),
)

# The account's key for signing callbacks and status reports (Infobip: one per account).
masking_credentials = Table(
    "masking_credentials",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("api_id", String(255), nullable=False),
    Column("key", String(255), nullable=False),
)

# Uploaded audio files (mp3 kept as sent; ``path`` is its 8 kHz WAV for playing).
masking_files = Table(
    "masking_files",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("file_id", String(36), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("source_url", Text, nullable=False),  # "" when uploaded as content
    Column("size", Integer, nullable=False),  # bytes of the mp3
    Column("duration", Float, nullable=False),  # seconds
    Column("path", Text, nullable=False),
    Column("created_time", UtcDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("main_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("subaccount", String(20), nullable=False),  # owner's auth_id if a subaccount
    Column("number_id", Id, ForeignKey("numbers.id", ondelete="SET NULL"), nullable=True),
    Column("virtual_number", String(16), nullable=False),
    Column("first_party", String(16), nullable=False),
    Column("second_party", String(16), nullable=False),
    # Both parties in a fixed order (veil.domain.allocator.pair_key): finds the number a
    # pair had before, whichever of them was first.
    Column("pair_key", String(33), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_time", UtcDateTime, nullable=False),
    Column("modified_time", UtcDateTime, nullable=False),
    Column("expiry_time", UtcDateTime, nullable=False),
    Column("duration", Integer, nullable=False),
    # Settings (veil.domain.session_params.SessionSettings), one column each.
    Column("call_time_limit", Integer, nullable=False),
    Column("ring_timeout", Integer, nullable=False),
    Column("record", Boolean, nullable=False),
    Column("record_file_format", String(8), nullable=False),
    Column("recording_callback_url", Text, nullable=False),
    Column("recording_callback_method", String(8), nullable=False),
    Column("callback_url", Text, nullable=False),
    Column("callback_method", String(8), nullable=False),
    Column("initiate_call_to_first_party", Boolean, nullable=False),
    Column("first_party_play_url", Text, nullable=False),
    Column("second_party_play_url", Text, nullable=False),
    Column("is_pin_authentication_required", Boolean, nullable=False),
    Column("generate_pin", Boolean, nullable=False),
    Column("generate_pin_length", Integer, nullable=False),
    Column("first_party_pin", String(15), nullable=False),
    Column("second_party_pin", String(15), nullable=False),
    Column("pin_prompt_play", Text, nullable=False),
    Column("pin_retry", Integer, nullable=False),
    Column("pin_retry_wait", Integer, nullable=False),
    Column("incorrect_pin_play", Text, nullable=False),
    Column("unknown_caller_play", Text, nullable=False),
    Column("geomatch", Boolean, nullable=False),
    Column("force_pin_authentication", Boolean, nullable=False),
    Column("create_session_with_single_party", Boolean, nullable=False),
    Column("virtual_number_cooloff_period", Integer, nullable=False),
    # Call statistics, filled by the call plane.
    Column("total_call_count", Integer, nullable=False, default=0),
    Column("total_call_billed_duration", Integer, nullable=False, default=0),
    Column("last_interaction_time", UtcDateTime, nullable=True),
    # The last callback SequenceNumber handed out for this session.
    Column("event_sequence", Integer, nullable=False, default=0),
    # Calls up right now: the session reads "in-progress" while this is above zero.
    Column("calls_in_progress", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_sessions_listing", "main_account_id", "created_time"),
    Index("ix_sessions_due", "status", "expiry_time"),
    # The pair's latest session (its sticky number), newest first from the index alone.
    Index("ix_sessions_pair", "main_account_id", "pair_key", "id"),
    Index("ix_sessions_first_party", "main_account_id", "first_party"),
    Index("ix_sessions_second_party", "main_account_id", "second_party"),
    Index("ix_sessions_number", "number_id"),
)

# A session's claims on its virtual number (veil.domain.allocator): one row per party
# and per PIN. The primary key is the uniqueness rule; busy_until is the session's
# expiry plus its cool-off, after which the row is dead and may be replaced.
number_claims = Table(
    "number_claims",
    metadata,
    # key first: "which numbers is this party busy on" is the allocator's question.
    Column("key", String(24), primary_key=True),
    Column("number_id", Id, ForeignKey("numbers.id", ondelete="CASCADE"), primary_key=True),
    Column("session_id", Id, ForeignKey("sessions.id"), nullable=False, index=True),
    Column("busy_until", UtcDateTime, nullable=False, index=True),
    # "Which PINs are in use on this number", for PIN generation.
    Index("ix_number_claims_number_key", "number_id", "key"),
    # A candidate number's load (its live claims' ends), read from the index alone.
    Index("ix_number_claims_number_busy", "number_id", "busy_until"),
)

# One row per call through a session (Plivo's "interaction"), written when it ends.
interactions = Table(
    "interactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("session_id", Id, ForeignKey("sessions.id"), nullable=False),
    Column("caller_role", String(8), nullable=False),  # "first" or "second"
    Column("start_time", UtcDateTime, nullable=False),
    Column("answer_time", UtcDateTime, nullable=True),
    Column("end_time", UtcDateTime, nullable=False),
    Column("first_party_call_uuid", String(36), nullable=True),
    Column("second_party_call_uuid", String(36), nullable=True),
    Column("first_party_status", String(16), nullable=False),
    Column("second_party_status", String(16), nullable=False),
    Column("duration", Integer, nullable=False),  # seconds both parties were connected
    Column("billed_duration", Integer, nullable=False),
    Column("call_count", Integer, nullable=False),
    Column("hangup_cause", String(64), nullable=False),
    # The call's recording (recordings.recording_id), set when its file is stored.
    Column("recording_id", String(36), nullable=True),
    Index("ix_interactions_session", "session_id", "id"),
)

# One row per recorded call (Plivo's Recording resource); the file is at ``path``.
recordings = Table(
    "recordings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recording_id", String(36), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),  # the session's owner
    Column("main_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("session_id", Id, ForeignKey("sessions.id"), nullable=False),
    Column("interaction_uuid", String(36), nullable=False),
    Column("call_uuid", String(36), nullable=False),
    Column("recording_type", String(16), nullable=False),
    Column("file_format", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("duration", Float, nullable=False),  # seconds
    Column("start_time", UtcDateTime, nullable=False),
    Column("end_time", UtcDateTime, nullable=False),
    Column("from_number", String(16), nullable=False),
    Column("to_number", String(16), nullable=False),
    Column("add_time", UtcDateTime, nullable=False),
    Index("ix_recordings_listing", "main_account_id", "add_time"),
    Index("ix_recordings_call", "call_uuid"),
    Index("ix_recordings_session", "session_id"),
)

# Transactional outbox: callbacks written in the same transaction as the change they
# report, delivered later by veil.webhooks.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("session_id", Id, ForeignKey("sessions.id"), nullable=True),
    Column("sequence", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("method", String(8), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object of string -> string
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_time", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_time", UtcDateTime, nullable=False),
    Column("delivered_time", UtcDateTime, nullable=True),
    # A worker sending the row holds it until lease_until; lease_owner names the claim,
    # so a worker whose lease ran out cannot reschedule a row another one has taken.
    Column("lease_until", UtcDateTime, nullable=True),
    Column("lease_owner", String(36), nullable=True),
    # Tried once after the primary URL failed for good (no Plivo parameter sets it yet).
    Column("backup_url", Text, nullable=True),
    # How the request is built and signed: "plivo" (form, X-Plivo-Signature-*) or
    # "infobip" (the payload as a JSON body, Authorization: apiId:SHA256(...)).
    Column("format", String(8), nullable=False, default="plivo", server_default="plivo"),
    Index("ix_outbox_due", "status", "next_attempt_time"),
    Index("ix_outbox_session", "session_id", "sequence"),
    Index("ix_outbox_account_created", "account_id", "created_time"),
)

# Every attempt to deliver an outbox row: the history an API can list.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("outbox_id", Id, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1, 2, ... for the row
    Column("time", UtcDateTime, nullable=False),  # when the request started
    Column("url", Text, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no response
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_delivery_attempts_outbox", "outbox_id", "attempt"),
)
