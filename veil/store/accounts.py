"""Account repository."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from veil.domain.accounts import Account
from veil.store.db import Conn
from veil.store.tables import accounts


def _account(row: Any) -> Account:
    return Account(**row._mapping)


async def insert_account(
    conn: Conn,
    *,
    auth_id: str,
    auth_token: str,
    name: str,
    parent_id: int | None,
    enabled: bool,
    now: datetime,
) -> Account:
    result = await conn.execute(
        insert(accounts)
        .values(
            auth_id=auth_id,
            auth_token=auth_token,
            name=name,
            parent_id=parent_id,
            enabled=enabled,
            created_time=now,
            modified_time=now,
        )
        .returning(*accounts.c)
    )
    return _account(result.one())


async def get_by_auth_id(conn: Conn, auth_id: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.auth_id == auth_id))).first()
    return _account(row) if row else None


async def get_by_auth_token(conn: Conn, auth_token: str) -> Account | None:
    """The account whose token this is (Infobip's ``Authorization: App <api key>``)."""
    row = (
        await conn.execute(select(accounts).where(accounts.c.auth_token == auth_token).limit(1))
    ).first()
    return _account(row) if row else None


async def get_by_id(conn: Conn, account_id: int) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return _account(row) if row else None


async def list_accounts(
    conn: Conn,
    *,
    parent_id: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[Account], int]:
    """Subaccounts of ``parent_id``, or every account when it is None; newest first."""
    where = [] if parent_id is None else [accounts.c.parent_id == parent_id]
    total = (
        await conn.execute(select(func.count()).select_from(accounts).where(*where))
    ).scalar_one()
    query = select(accounts).where(*where).order_by(accounts.c.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = (await conn.execute(query)).all()
    return [_account(r) for r in rows], int(total)


async def update_account(conn: Conn, account_id: int, *, now: datetime, **values: Any) -> None:
    await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(modified_time=now, **values)
    )
