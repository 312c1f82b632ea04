"""Infobip-style number masking: configurations (v1 actions and v2 configs), the numbers
they own, the accounts' signing credentials and the uploaded audio files."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from veil.domain.infobip import ConfigKind, MaskingConfig
from veil.store.db import Conn
from veil.store.tables import (
    accounts,
    masking_configs,
    masking_credentials,
    masking_files,
    number_claims,
    numbers,
)


def _config(row: Any) -> MaskingConfig:
    values = {name: row._mapping[name] for name in MaskingConfig.__slots__}
    values["kind"] = ConfigKind(values["kind"])
    return MaskingConfig(**values)


# -- configurations
async def insert_config(conn: Conn, values: dict[str, Any]) -> MaskingConfig:
    row = (
        await conn.execute(insert(masking_configs).values(**values).returning(*masking_configs.c))
    ).one()
    return _config(row)


async def get_config(conn: Conn, key: str) -> MaskingConfig | None:
    row = (await conn.execute(select(masking_configs).where(masking_configs.c.key == key))).first()
    return _config(row) if row else None


async def configs_by_id(conn: Conn, ids: Collection[int]) -> dict[int, MaskingConfig]:
    """The configurations with these ids (numbers' owners, for listings)."""
    if not ids:
        return {}
    rows = await conn.execute(select(masking_configs).where(masking_configs.c.id.in_(ids)))
    return {row.id: _config(row) for row in rows}


async def name_taken(conn: Conn, account_id: int, name: str, *, other_than: int = 0) -> bool:
    found = await conn.execute(
        select(masking_configs.c.id).where(
            masking_configs.c.account_id == account_id,
            masking_configs.c.kind == ConfigKind.CONFIG.value,
            masking_configs.c.name == name,
            masking_configs.c.id != other_than,
        )
    )
    return found.first() is not None


async def list_configs(conn: Conn, account_id: int, kind: ConfigKind) -> list[MaskingConfig]:
    rows = await conn.execute(
        select(masking_configs)
        .where(masking_configs.c.account_id == account_id, masking_configs.c.kind == kind.value)
        .order_by(masking_configs.c.id)
    )
    return [_config(r) for r in rows]


async def number_actions(conn: Conn, number_id: int) -> list[MaskingConfig]:
    """The v1 action on a number (a list, as the API shows it)."""
    rows = await conn.execute(
        select(masking_configs)
        .join(numbers, numbers.c.masking_config_id == masking_configs.c.id)
        .where(numbers.c.id == number_id, masking_configs.c.kind == ConfigKind.ACTION.value)
    )
    return [_config(r) for r in rows]


async def update_config(conn: Conn, config_id: int, values: dict[str, Any]) -> MaskingConfig:
    row = (
        await conn.execute(
            update(masking_configs)
            .where(masking_configs.c.id == config_id)
            .values(**values)
            .returning(*masking_configs.c)
        )
    ).one()
    return _config(row)


async def delete_config(conn: Conn, config_id: int) -> None:
    """Delete a configuration; its numbers go back to the session pool."""
    await conn.execute(
        update(numbers)
        .where(numbers.c.masking_config_id == config_id)
        .values(masking_config_id=None)
    )
    await conn.execute(delete(masking_configs).where(masking_configs.c.id == config_id))


# -- numbers and their owner
@dataclass(frozen=True, slots=True)
class OwnedNumber:
    id: int
    e164: str
    number_key: str
    account_id: int  # the main account
    subaccount_id: int | None
    masking_config_id: int | None


_OWNED = select(
    numbers.c.id,
    numbers.c.e164,
    numbers.c.number_key,
    numbers.c.account_id,
    numbers.c.subaccount_id,
    numbers.c.masking_config_id,
)


async def number_by_key(conn: Conn, number_key: str, *, lock: bool = False) -> OwnedNumber | None:
    """A number by its key; ``lock`` holds its row until the transaction ends
    (PostgreSQL: a concurrent session cannot claim it meanwhile)."""
    query = _OWNED.where(numbers.c.number_key == number_key)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return OwnedNumber(**row._mapping) if row else None


async def link_number(conn: Conn, number_id: int, config_id: int | None) -> None:
    await conn.execute(
        update(numbers).where(numbers.c.id == number_id).values(masking_config_id=config_id)
    )


async def linked_numbers(conn: Conn, config_id: int) -> list[OwnedNumber]:
    rows = await conn.execute(
        _OWNED.where(numbers.c.masking_config_id == config_id).order_by(numbers.c.id)
    )
    return [OwnedNumber(**r._mapping) for r in rows]


async def live_claims(conn: Conn, number_id: int, now: datetime) -> int:
    """Sessions holding the number now (their expiry plus cool-off not yet passed)."""
    result = await conn.execute(
        select(func.count(func.distinct(number_claims.c.session_id))).where(
            number_claims.c.number_id == number_id, number_claims.c.busy_until > now
        )
    )
    return int(result.scalar_one())


# The configuration of a called number, with the main account that owns the number.
_CONFIG_OF_NUMBER = (
    select(masking_configs, numbers.c.account_id.label("number_account_id"))
    .join(numbers, numbers.c.masking_config_id == masking_configs.c.id)
    .where(numbers.c.e164 == bindparam("e164"))
)


async def config_of_number(conn: Conn, e164: str) -> tuple[MaskingConfig, int] | None:
    row = (await conn.execute(_CONFIG_OF_NUMBER, {"e164": e164})).first()
    return (_config(row), int(row.number_account_id)) if row else None


_NUMBER_OF_ACCOUNT = select(numbers.c.id).where(
    numbers.c.e164 == bindparam("e164"), numbers.c.account_id == bindparam("account")
)


async def is_number_of(conn: Conn, e164: str, main_account_id: int) -> bool:
    row = (
        await conn.execute(_NUMBER_OF_ACCOUNT, {"e164": e164, "account": main_account_id})
    ).first()
    return row is not None


async def main_account_id(conn: Conn, account_id: int) -> int:
    result = await conn.execute(
        select(func.coalesce(accounts.c.parent_id, accounts.c.id)).where(
            accounts.c.id == account_id
        )
    )
    return int(result.scalar_one())


# -- credentials: one per account
async def get_credentials(conn: Conn, account_id: int) -> tuple[str, str] | None:
    row = (
        await conn.execute(
            select(masking_credentials.c.api_id, masking_credentials.c.key).where(
                masking_credentials.c.account_id == account_id
            )
        )
    ).first()
    return (row.api_id, row.key) if row else None


async def insert_credentials(conn: Conn, account_id: int, api_id: str, key: str) -> None:
    await conn.execute(
        insert(masking_credentials).values(account_id=account_id, api_id=api_id, key=key)
    )


async def update_credentials(conn: Conn, account_id: int, api_id: str, key: str) -> None:
    await conn.execute(
        update(masking_credentials)
        .where(masking_credentials.c.account_id == account_id)
        .values(api_id=api_id, key=key)
    )


async def delete_credentials(conn: Conn, account_id: int) -> None:
    await conn.execute(
        delete(masking_credentials).where(masking_credentials.c.account_id == account_id)
    )


# -- audio files
@dataclass(frozen=True, slots=True)
class AudioFile:
    file_id: str
    account_id: int
    source_url: str
    size: int
    duration: float
    path: str
    created_time: datetime


async def insert_file(conn: Conn, file: AudioFile) -> None:
    await conn.execute(
        insert(masking_files).values(
            file_id=file.file_id,
            account_id=file.account_id,
            source_url=file.source_url,
            size=file.size,
            duration=file.duration,
            path=file.path,
            created_time=file.created_time,
        )
    )


async def get_file(conn: Conn, file_id: str, account_id: int) -> AudioFile | None:
    """An account's file (another account's file id finds nothing)."""
    row = (
        await conn.execute(
            select(
                masking_files.c.file_id,
                masking_files.c.account_id,
                masking_files.c.source_url,
                masking_files.c.size,
                masking_files.c.duration,
                masking_files.c.path,
                masking_files.c.created_time,
            ).where(masking_files.c.file_id == file_id, masking_files.c.account_id == account_id)
        )
    ).first()
    return AudioFile(**row._mapping) if row else None
