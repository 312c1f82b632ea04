"""Calls to numbers of Infobip-style configurations: what the call plane must look up
while it carries out the customer's commands, and the status report when a call ends."""

from __future__ import annotations

from veil.domain.infobip import MaskedCall, caller_id_problem
from veil.service.context import ServiceContext
from veil.store import infobip as repo
from veil.store import outbox
from veil.store.infobip import AudioFile

STATUS_EVENT = "infobip.status"


async def credentials(ctx: ServiceContext, account_id: int) -> tuple[str, str] | None:
    """(apiId, key) the account signs its callbacks with, if it set them."""
    async with ctx.db.read() as conn:
        return await repo.get_credentials(conn, account_id)


async def check_caller_id(
    ctx: ServiceContext, main_account_id: int, called: str, caller_id: str
) -> str | None:
    """Why a dial may not show ``caller_id`` (None: it may)."""
    numbers: set[str] = set()
    if caller_id and caller_id != called:
        async with ctx.db.read() as conn:
            if await repo.is_number_of(conn, caller_id, main_account_id):
                numbers.add(caller_id)
    return caller_id_problem(caller_id, called, numbers)


async def audio_file(ctx: ServiceContext, account_id: int, file_id: str) -> AudioFile | None:
    async with ctx.db.read() as conn:
        return await repo.get_file(conn, file_id, account_id)


async def call_ended(ctx: ServiceContext, call: MaskedCall) -> None:
    """Queue the status report (statusUrl, then backupStatusUrl) for reliable delivery."""
    config = call.config
    if not config.status_url:
        return
    async with ctx.db.write() as conn:
        await outbox.enqueue_json(
            conn,
            account_id=config.account_id,
            event=STATUS_EVENT,
            url=config.status_url,
            backup_url=config.backup_status_url,
            body=call.status_report(),
            now=ctx.clock.now(),
        )
