"""Call recordings: what the call plane reports (a recording began, its file is ready, it
failed) and what clients do with them through Plivo's Recording resource (list, read,
download, delete).

The call plane records an answered call of a ``record=true`` session, converts it and
writes the file at ``recording_file_path``; then it calls ``recording_completed`` on the
call's ordered queue, after ``call_ended`` has stored the interaction. Each function is
one transaction; the events go to the session's ``recording_callback_url`` through the
outbox, numbered in the session's one ``SequenceNumber`` series.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import NotFound
from veil.domain.events import Callback, RecordingDetails, RecordingEvent, recording_event
from veil.domain.ids import is_uuid
from veil.domain.recordings import (
    RECORDING_TYPE_CALL,
    Recording,
    RecordingFilter,
    media_uri,
    resource_uri,
)
from veil.domain.values import RECORD_FILE_FORMATS
from veil.service import accounts
from veil.service.calls import Interaction
from veil.service.context import ServiceContext
from veil.store import accounts as account_repo
from veil.store import outbox
from veil.store import recordings as repo
from veil.store.db import Conn

log = logging.getLogger(__name__)

FILES_DIR = "files"  # under VEIL_RECORDINGS_DIR, beside the call plane's spool


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """A finished recording, converted and in place."""

    uuid: str  # the recording_id (veil.domain.ids.new_uuid())
    path: Path  # the converted file, already at recording_file_path(...)
    file_format: str  # "mp3" or "wav"
    duration: float  # seconds
    start_time: datetime  # aware UTC
    end_time: datetime


def recording_file_path(
    recordings_dir: Path, account_id: int, recording_uuid: str, file_format: str
) -> Path:
    """Where the call plane writes a recording's file:
    ``{recordings_dir}/files/{account_id}/{recording_uuid}.{file_format}``, with
    ``account_id`` the session's owner (``Session.account_id``). ``ValueError`` for a
    recording_uuid that is not a UUID or a format other than mp3 and wav."""
    if not is_uuid(recording_uuid):
        raise ValueError(f"recording_uuid must be a UUID, got {recording_uuid!r}")
    if file_format not in RECORD_FILE_FORMATS:
        raise ValueError(f"file_format must be mp3 or wav, got {file_format!r}")
    return recordings_dir / FILES_DIR / str(account_id) / f"{recording_uuid}.{file_format}"


async def _report(
    conn: Conn,
    interaction: Interaction,
    event: RecordingEvent,
    details: RecordingDetails,
    now: datetime,
) -> None:
    """Write a recording event to the outbox, when the session has a
    recording_callback_url."""
    session = interaction.session
    if not session.settings.recording_callback_url:
        return
    caller, callee = interaction.caller, interaction.callee

    def build(sequence: int) -> Callback | None:
        return recording_event(
            session, event, now, sequence, caller=caller, callee=callee, details=details
        )

    await outbox.enqueue_session_event(conn, session, now, build)


async def recording_initiated(
    ctx: ServiceContext, interaction: Interaction, recording_uuid: str, start_time: datetime
) -> None:
    """Recording began (both parties connected): ``SessionRecordingInitiated``. The
    recording's URLs, duration and end are sent empty: there is no file yet."""
    session = interaction.session
    if not session.settings.recording_callback_url:
        return
    details = RecordingDetails(
        recording_uuid=recording_uuid,
        start_time=start_time,
        file_format=session.settings.record_file_format,
    )
    async with ctx.db.write() as conn:
        await _report(conn, interaction, RecordingEvent.INITIATED, details, ctx.clock.now())


async def recording_completed(
    ctx: ServiceContext, interaction: Interaction, file: RecordingFile
) -> None:
    """The file is in place: store the recording, link the interaction to it (its
    ``recording_resource_url``) and report ``SessionRecordingCompleted``, in one
    transaction."""
    session = interaction.session
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        owner = await account_repo.get_by_id(conn, session.account_id)
        assert owner is not None  # a foreign key
        await repo.insert_recording(
            conn,
            {
                "recording_id": file.uuid,
                "account_id": session.account_id,
                "main_account_id": session.main_account_id,
                "session_id": session.id,
                "interaction_uuid": interaction.uuid,
                "call_uuid": interaction.leg_uuids.get(interaction.caller_role, interaction.uuid),
                "recording_type": RECORDING_TYPE_CALL,
                "file_format": file.file_format,
                "path": str(file.path.absolute()),
                "duration": file.duration,
                "start_time": file.start_time,
                "end_time": file.end_time,
                "from_number": interaction.caller,
                "to_number": interaction.callee,
                "add_time": now,
            },
        )
        linked = await repo.link_interaction(
            conn, interaction_uuid=interaction.uuid, recording_id=file.uuid
        )
        if not linked:
            log.warning("recording %s: no interaction %s to link", file.uuid, interaction.uuid)
        details = RecordingDetails(
            recording_uuid=file.uuid,
            url=ctx.public_url + media_uri(owner.auth_id, file.uuid, file.file_format),
            resource_url=ctx.public_url + resource_uri(owner.auth_id, file.uuid),
            duration=file.duration,
            start_time=file.start_time,
            end_time=file.end_time,
            file_format=file.file_format,
        )
        await _report(conn, interaction, RecordingEvent.COMPLETED, details, now)


async def recording_failed(ctx: ServiceContext, interaction: Interaction, reason: str) -> None:
    """``record=true`` but the call has no recording: ``SessionRecordingFailed``, with
    ``reason`` in ``RecordingFailureReason`` (Veil's addition)."""
    log.warning("recording of call %s failed: %s", interaction.uuid, reason)
    if not interaction.session.settings.recording_callback_url:
        return
    details = RecordingDetails(failure_reason=reason)
    async with ctx.db.write() as conn:
        await _report(conn, interaction, RecordingEvent.FAILED, details, ctx.clock.now())


# --- The Recording resource ---------------------------------------------------------------


def _visible(principal: Account, recording: Recording) -> bool:
    """The sessions' rule: a subaccount sees its own, a main account all of its tree."""
    if principal.is_subaccount:
        return recording.account_id == principal.id
    return recording.main_account_id == principal.id


async def _find(conn: Conn, principal: Account, recording_id: str) -> Recording:
    """The principal's recording; ``NotFound`` for anything else, including another
    account's recording."""
    recording = await repo.get_recording(conn, recording_id) if is_uuid(recording_id) else None
    if recording is None or not _visible(principal, recording):
        raise NotFound(messages.RECORDING_NOT_FOUND)
    return recording


async def get_recording(ctx: ServiceContext, principal: Account, recording_id: str) -> Recording:
    async with ctx.db.read() as conn:
        return await _find(conn, principal, recording_id)


async def list_recordings(
    ctx: ServiceContext, principal: Account, filters: RecordingFilter
) -> tuple[list[Recording], int]:
    """The principal's recordings, newest first; a main account sees its subaccounts'
    too, or one subaccount's with the ``subaccount`` filter."""
    named = await accounts.acting_as(ctx, principal, filters.subaccount)
    async with ctx.db.read() as conn:
        return await repo.list_recordings(
            conn,
            main_account_id=principal.main_account_id,
            account_id=named.id if named.is_subaccount else None,
            filters=filters,
        )


async def recording_file(
    ctx: ServiceContext, principal: Account, recording_id: str, file_format: str
) -> Recording:
    """The principal's recording whose file is ``{recording_id}.{file_format}`` and
    exists; ``NotFound`` otherwise."""
    recording = await get_recording(ctx, principal, recording_id)
    if file_format != recording.file_format or not await asyncio.to_thread(
        Path(recording.path).is_file
    ):
        raise NotFound(messages.RECORDING_NOT_FOUND)
    return recording


async def delete_recording(ctx: ServiceContext, principal: Account, recording_id: str) -> None:
    """Remove the recording (its interaction's ``recording_resource_url`` goes back to
    null), then its file once that is committed."""
    async with ctx.db.write() as conn:
        recording = await _find(conn, principal, recording_id)
        await repo.delete_recording(conn, recording.recording_id)
    await asyncio.to_thread(Path(recording.path).unlink, missing_ok=True)
