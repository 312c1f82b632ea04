"""Recording repository: the rows behind Plivo's Recording resource, and the link from
an interaction to its recording."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from veil.domain.recordings import Recording, RecordingFilter
from veil.store.db import Conn
from veil.store.paging import bound_clause, newest_first
from veil.store.tables import interactions, recordings

_FIELDS = list(Recording.__dataclass_fields__)

_INSERT = insert(recordings).returning(*recordings.c)
_BY_RECORDING_ID = select(recordings).where(recordings.c.recording_id == bindparam("rid"))
_LINK = (
    update(interactions)
    .where(interactions.c.uuid == bindparam("interaction_uuid"))
    .values(recording_id=bindparam("rid"))
)
_UNLINK = (
    update(interactions)
    .where(interactions.c.recording_id == bindparam("rid"))
    .values(recording_id=None)
)
_DELETE = delete(recordings).where(recordings.c.recording_id == bindparam("rid"))


def recording_from_row(row: Any) -> Recording:
    m = row._mapping
    return Recording(**{name: m[name] for name in _FIELDS})


async def insert_recording(conn: Conn, values: dict[str, Any]) -> Recording:
    result = await conn.execute(_INSERT, values)
    return recording_from_row(result.one())


async def link_interaction(conn: Conn, *, interaction_uuid: str, recording_id: str) -> bool:
    """Point the interaction at its recording; False if there is no such interaction."""
    result = await conn.execute(_LINK, {"interaction_uuid": interaction_uuid, "rid": recording_id})
    return result.rowcount == 1


async def get_recording(conn: Conn, recording_id: str) -> Recording | None:
    row = (await conn.execute(_BY_RECORDING_ID, {"rid": recording_id})).first()
    return recording_from_row(row) if row else None


async def delete_recording(conn: Conn, recording_id: str) -> None:
    """Remove the row, and the link to it from its interaction."""
    await conn.execute(_UNLINK, {"rid": recording_id})
    await conn.execute(_DELETE, {"rid": recording_id})


async def list_recordings(
    conn: Conn, *, main_account_id: int, account_id: int | None, filters: RecordingFilter
) -> tuple[list[Recording], int]:
    """Recordings of a main account (or only of ``account_id``), newest first, with the
    total."""
    where: list[ColumnElement[bool]] = [recordings.c.main_account_id == main_account_id]
    if account_id is not None:
        where.append(recordings.c.account_id == account_id)
    for name in ("call_uuid", "from_number", "to_number", "recording_type"):
        value = getattr(filters, name)
        if value is not None:
            where.append(recordings.c[name] == value)
    where.extend(bound_clause(recordings.c[b.column], b) for b in filters.bounds)
    rows, total = await newest_first(
        conn,
        select(recordings),
        recordings,
        where,
        recordings.c.add_time,
        limit=filters.limit,
        offset=filters.offset,
    )
    return [recording_from_row(r) for r in rows], total
