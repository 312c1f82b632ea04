"""The virtual number pool: add, list, change and remove numbers.

A number belongs to a main account; a subaccount sees (and manages) only the numbers
scoped to it. A number used by an active session cannot be removed: its callers would
be cut off from a session that still promises to connect them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import Conflict, InvalidRequest, NotFound
from veil.domain.numbers import VirtualNumber
from veil.domain.phone import E164, parse_e164
from veil.service import accounts
from veil.service.context import ServiceContext
from veil.store import numbers as repo


@dataclass(frozen=True, slots=True)
class NumberDetails:
    """What a client may set when adding or changing a number."""

    carrier: str = ""
    region: str = ""
    number_type: str = "local"
    alias: str | None = None
    reserved: bool = False


def parse_numbers(raw: Sequence[str], name: str = "numbers") -> list[E164]:
    """Validate a list of numbers (duplicates folded); the first invalid one is named."""
    parsed: dict[str, E164] = {}
    for text in raw:
        number = parse_e164(text)
        if number is None:
            raise InvalidRequest(f"Invalid parameter. {text!s} is not a valid phone number.")
        parsed[number.value] = number
    if not parsed:
        raise InvalidRequest(messages.missing(name))
    return list(parsed.values())


async def _scope(ctx: ServiceContext, principal: Account, subaccount: str | None) -> int | None:
    """The subaccount id numbers are scoped to, checked against the principal."""
    named = await accounts.acting_as(ctx, principal, subaccount)
    return named.id if named.is_subaccount else None


async def add_numbers(
    ctx: ServiceContext,
    principal: Account,
    raw: Sequence[str],
    *,
    subaccount: str | None = None,
    details: NumberDetails = NumberDetails(),
) -> list[VirtualNumber]:
    """Add carrier numbers to the pool; all or nothing."""
    parsed = parse_numbers(raw)
    subaccount_id = await _scope(ctx, principal, subaccount)
    now = ctx.clock.now()
    rows = [
        {
            "e164": n.value,
            "account_id": principal.main_account_id,
            "subaccount_id": subaccount_id,
            "country": n.country,
            "reserved": details.reserved,
            "alias": details.alias,
            "carrier": details.carrier,
            "region": details.region,
            "number_type": details.number_type,
            "added_time": now,
        }
        for n in parsed
    ]
    try:
        async with ctx.db.write() as conn:
            taken = await repo.existing(conn, [n.value for n in parsed])
            if taken:
                raise Conflict(_already_added(taken))
            await repo.insert_numbers(conn, rows)
    except IntegrityError:  # added by someone else between our check and insert
        async with ctx.db.read() as conn:
            taken = await repo.existing(conn, [n.value for n in parsed])
        raise Conflict(_already_added(taken or [parsed[0].value])) from None
    async with ctx.db.read() as conn:
        found = [await repo.get_number(conn, n.value) for n in parsed]
    return [n for n in found if n is not None]


def _already_added(e164s: Sequence[str]) -> str:
    listed = ", ".join(sorted(e.lstrip("+") for e in e164s))
    return f"Invalid parameter. number already added: {listed}."


def _visible(principal: Account, number: VirtualNumber) -> bool:
    if principal.is_subaccount:
        return number.subaccount_id == principal.id
    return number.account_id == principal.id


async def get_number(ctx: ServiceContext, principal: Account, raw: str) -> VirtualNumber:
    number = parse_e164(raw)
    if number is None:
        raise NotFound(messages.NUMBER_NOT_FOUND)
    async with ctx.db.read() as conn:
        found = await repo.get_number(conn, number.value)
    if found is None or not _visible(principal, found):
        raise NotFound(messages.NUMBER_NOT_FOUND)
    return found


async def list_numbers(
    ctx: ServiceContext,
    principal: Account,
    *,
    subaccount: str | None = None,
    starts_with: str | None = None,
    alias: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[VirtualNumber], int]:
    subaccount_id = await _scope(ctx, principal, subaccount)
    async with ctx.db.read() as conn:
        return await repo.list_numbers(
            conn,
            account_id=principal.main_account_id,
            subaccount_id=subaccount_id,
            starts_with=starts_with,
            alias=alias,
            limit=limit,
            offset=offset,
        )


async def list_all_numbers(ctx: ServiceContext) -> list[VirtualNumber]:
    """Every account's numbers (operator CLI)."""
    async with ctx.db.read() as conn:
        found, _ = await repo.list_numbers(conn, account_id=None)
    return found


_UNSET = object()


async def update_number(
    ctx: ServiceContext,
    principal: Account,
    raw: str,
    *,
    alias: object = _UNSET,
    subaccount: object = _UNSET,
    reserved: bool | None = None,
) -> VirtualNumber:
    """Change a number's alias, subaccount scope ("" for none) or reservation."""
    number = await get_number(ctx, principal, raw)
    values: dict[str, object] = {}
    if alias is not _UNSET:
        values["alias"] = alias or None
    if subaccount is not _UNSET:
        if principal.is_subaccount:
            raise InvalidRequest(messages.SUBACCOUNT_NOT_FOUND)
        values["subaccount_id"] = await _scope(ctx, principal, str(subaccount or "") or None)
    if reserved is not None:
        values["reserved"] = reserved
    if values:
        async with ctx.db.write() as conn:
            await repo.update_number(conn, number.id, **values)
    return await get_number(ctx, principal, number.e164)


async def remove_number(ctx: ServiceContext, principal: Account | None, raw: str) -> None:
    """Remove a number from the pool; refused while an active session uses it.

    ``principal`` None is the operator (CLI), who may remove any account's number.
    """
    number = parse_e164(raw)
    if number is None:
        raise NotFound(messages.NUMBER_NOT_FOUND)
    async with ctx.db.write() as conn:
        found = await repo.get_number(conn, number.value)
        if found is None or (principal is not None and not _visible(principal, found)):
            raise NotFound(messages.NUMBER_NOT_FOUND)
        if await repo.active_session_count(conn, found.id, ctx.clock.now()):
            raise Conflict(messages.NUMBER_IN_USE)
        await repo.delete_number(conn, found.id)
