"""A recorded call, played the way the call plane drives the service: the call starts and
is answered, recording begins, the call ends (the interaction is stored), the converted
file is written at ``recording_file_path`` and ``recording_completed`` stores it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from veil.domain.calls import LegStatus, Role
from veil.domain.ids import new_uuid
from veil.domain.session import Session
from veil.service.calls import Interaction, call_ended, call_started
from veil.service.context import ServiceContext
from veil.service.recordings import (
    RecordingFile,
    recording_completed,
    recording_file_path,
    recording_initiated,
)


@dataclass(frozen=True)
class RecordedCall:
    interaction: Interaction
    file: RecordingFile
    content: bytes


def audio_bytes(tag: str, file_format: str) -> bytes:
    """Small, distinct file contents (a header of the right kind, then the tag)."""
    header = b"ID3\x04\x00\x00\x00\x00\x00\x00" if file_format == "mp3" else b"RIFF\x00\x00WAVE"
    return header + tag.encode() * 64


async def write_file(path: Path, content: bytes) -> None:
    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    await asyncio.to_thread(write)


async def recorded_call(
    ctx: ServiceContext,
    session: Session,
    recordings_dir: Path,
    *,
    start: datetime,
    talk: float,
    caller_role: Role = Role.FIRST,
    file_format: str | None = None,
) -> RecordedCall:
    """One answered, recorded call through ``session`` from ``start`` for ``talk``
    seconds; recorded in the session's format unless ``file_format`` says otherwise."""
    fmt = file_format or session.settings.record_file_format
    interaction = Interaction(session, caller_role, start)
    for role in (caller_role, caller_role.other):
        interaction.leg_uuids[role] = new_uuid()
    await call_started(ctx, interaction)
    interaction.answer_time = start
    interaction.statuses[caller_role] = LegStatus.COMPLETED
    interaction.statuses[caller_role.other] = LegStatus.COMPLETED
    recording_uuid = new_uuid()
    await recording_initiated(ctx, interaction, recording_uuid, start)
    end = start + timedelta(seconds=talk)
    interaction.end_time = end
    await call_ended(ctx, interaction)
    path = recording_file_path(recordings_dir, session.account_id, recording_uuid, fmt)
    content = audio_bytes(recording_uuid, fmt)
    await write_file(path, content)
    file = RecordingFile(
        uuid=recording_uuid,
        path=path,
        file_format=fmt,
        duration=talk,
        start_time=start,
        end_time=end,
    )
    await recording_completed(ctx, interaction, file)
    return RecordedCall(interaction, file, content)
