"""The migrations build exactly the schema ``veil.store.tables`` declares, on both
databases, and the newest one goes down and up again with data in place."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.servers import BACKENDS, database
from veil.store import migrate
from veil.store.tables import metadata


async def _differences(url: str) -> list[Any]:
    engine = create_async_engine(url)

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _scalar(url: str, sql: str) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migrated_schema_is_the_declared_one(backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path) as url:
        assert asyncio.run(_differences(url)) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_numbers_added_before_infobip_mode_get_a_key_and_keep_it(
    backend: str, tmp_path: Path
) -> None:
    with database(backend, tmp_path) as url:
        config = migrate.alembic_config(url)
        command.downgrade(config, "0004")
        insert_account = (
            "INSERT INTO accounts (id, auth_id, auth_token, name, enabled, created_time,"
            " modified_time) VALUES (1, 'MAAAAAAAAAAAAAAAAAAA', 't', 'n', true,"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00') RETURNING id"
        )
        insert_number = (
            "INSERT INTO numbers (e164, account_id, country, reserved, carrier, region,"
            " number_type, added_time) VALUES ('+14155550100', 1, 'US', false, '', '',"
            " 'local', '2026-01-01 00:00:00') RETURNING id"
        )
        asyncio.run(_scalar(url, insert_account))
        asyncio.run(_scalar(url, insert_number))
        command.upgrade(config, "head")
        key = asyncio.run(_scalar(url, "SELECT number_key FROM numbers"))
        assert isinstance(key, str) and len(key) == 32 and key == key.upper()
        command.downgrade(config, "0004")
        command.upgrade(config, "head")
        assert asyncio.run(_scalar(url, "SELECT count(*) FROM numbers")) == 1
        assert asyncio.run(_differences(url)) == []
