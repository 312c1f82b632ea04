"""The Infobip-compatible number masking API's use cases: v1 actions, v2 configurations
and the numbers linked to them, signing credentials, and the numbers an account may
name by their ``numberKey``. Audio uploads are in ``veil.service.infobip_files``.

Scope: configurations, actions and credentials belong to the principal's own account (a
subaccount's are its own, a main account's are not its subaccounts'); another account's
are not found. Numbers are visible as in the Plivo API: a subaccount sees the numbers
scoped to it, a main account all of its tree's.

A number has one owner: the masking-session pool or one action or configuration. It can
be given to one only while no other owns it and no masking session holds it (claims
until expiry plus cool-off). Its row is locked first (``SELECT ... FOR UPDATE``), which
on PostgreSQL makes a concurrent session allocation wait and then see the new owner
(``veil.store.claims.claim_sql``); SQLite runs writers one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from veil.domain import infobip as rules
from veil.domain.accounts import Account
from veil.domain.errors import Conflict, InvalidRequest, NotFound
from veil.domain.ids import new_number_key
from veil.domain.infobip import ConfigFields, ConfigKind, MaskingConfig
from veil.domain.numbers import VirtualNumber
from veil.domain.phone import parse_e164
from veil.service import numbers as number_service
from veil.service.context import ServiceContext
from veil.store import infobip as repo
from veil.store import numbers as number_repo
from veil.store.db import Conn
from veil.store.infobip import OwnedNumber

NUMBERS_LIMIT = 50  # GET /numbers/1/numbers: Infobip's default page size
NUMBERS_LIMIT_MAX = 1000  # and its largest
NUMBERS_PAGE_MAX = 1_000_000  # keeps the offset a sane integer


def _sees(principal: Account, number: OwnedNumber | VirtualNumber) -> bool:
    if principal.is_subaccount:
        return number.subaccount_id == principal.id
    return number.account_id == principal.id


async def _take_number(
    ctx: ServiceContext, conn: Conn, principal: Account, number_key: str, config_id: int | None
) -> OwnedNumber:
    """The principal's number ``number_key``, locked, free to be given to ``config_id``
    (None: a configuration not created yet); ``NotFound`` or ``Conflict`` otherwise."""
    number = await repo.number_by_key(conn, number_key, lock=True)
    if number is None or not _sees(principal, number):
        raise NotFound(rules.NUMBER_NOT_FOUND)
    if number.masking_config_id is not None:
        if number.masking_config_id == config_id:
            return number
        raise Conflict(rules.NUMBER_OWNED)
    if await repo.live_claims(conn, number.id, ctx.clock.now()):
        raise Conflict(rules.NUMBER_IN_SESSIONS)
    return number


def _fields(fields: ConfigFields) -> dict[str, Any]:
    return {
        "name": fields.name,
        "callback_url": fields.callback_url,
        "status_url": fields.status_url,
        "backup_callback_url": fields.backup_callback_url,
        "backup_status_url": fields.backup_status_url,
        "description": fields.description,
    }


async def _insert(
    ctx: ServiceContext, conn: Conn, principal: Account, kind: ConfigKind, fields: ConfigFields
) -> MaskingConfig:
    now = ctx.clock.now()
    return await repo.insert_config(
        conn,
        {
            "key": new_number_key(),
            "account_id": principal.id,
            "kind": kind.value,
            "insert_time": now,
            "update_time": now,
            **_fields(fields),
        },
    )


# -- v1: one action per number -------------------------------------------------------------


async def create_action(
    ctx: ServiceContext, principal: Account, number_key: str, body: dict[str, Any]
) -> MaskingConfig:
    """``POST /numbers/1/numbers/{numberKey}/actions``: the number asks ``callbackUrl``."""
    fields = rules.action_fields(body)
    async with ctx.db.write() as conn:
        number = await _take_number(ctx, conn, principal, number_key, None)
        action = await _insert(ctx, conn, principal, ConfigKind.ACTION, fields)
        await repo.link_number(conn, number.id, action.id)
    return action


async def _visible_number(conn: Conn, principal: Account, number_key: str) -> OwnedNumber:
    number = await repo.number_by_key(conn, number_key)
    if number is None or not _sees(principal, number):
        raise NotFound(rules.NUMBER_NOT_FOUND)
    return number


async def list_actions(
    ctx: ServiceContext, principal: Account, number_key: str
) -> list[MaskingConfig]:
    """The principal's action on the number (a list, as Infobip shows it)."""
    async with ctx.db.read() as conn:
        number = await _visible_number(conn, principal, number_key)
        found = await repo.number_actions(conn, number.id)
    return [a for a in found if a.account_id == principal.id]


async def get_action(
    ctx: ServiceContext, principal: Account, number_key: str, action_key: str
) -> MaskingConfig:
    for action in await list_actions(ctx, principal, number_key):
        if action.key == action_key:
            return action
    raise NotFound(rules.ACTION_NOT_FOUND)


async def delete_action(
    ctx: ServiceContext, principal: Account, number_key: str, action_key: str
) -> None:
    """The number goes back to the session pool."""
    async with ctx.db.write() as conn:
        number = await _visible_number(conn, principal, number_key)
        action = await repo.get_config(conn, action_key)
        if (
            action is None
            or action.kind is not ConfigKind.ACTION
            or action.account_id != principal.id
            or number.masking_config_id != action.id
        ):
            raise NotFound(rules.ACTION_NOT_FOUND)
        await repo.delete_config(conn, action.id)


# -- v2: named configurations, linked to any numbers -----------------------------------------


def _name_lock(principal: Account) -> str:
    return f"masking-config-names:{principal.id}"


async def create_config(
    ctx: ServiceContext, principal: Account, body: dict[str, Any]
) -> MaskingConfig:
    fields = rules.config_fields(body)
    async with ctx.db.write() as conn:
        await ctx.db.lock_keys(conn, [_name_lock(principal)])  # names are unique per account
        if await repo.name_taken(conn, principal.id, fields.name):
            raise Conflict(rules.NAME_TAKEN)
        return await _insert(ctx, conn, principal, ConfigKind.CONFIG, fields)


async def list_configs(ctx: ServiceContext, principal: Account) -> list[MaskingConfig]:
    async with ctx.db.read() as conn:
        return await repo.list_configs(conn, principal.id, ConfigKind.CONFIG)


async def _own_config(conn: Conn, principal: Account, key: str) -> MaskingConfig:
    config = await repo.get_config(conn, key)
    if config is None or config.kind is not ConfigKind.CONFIG or config.account_id != principal.id:
        raise NotFound(rules.CONFIG_NOT_FOUND)
    return config


async def get_config(ctx: ServiceContext, principal: Account, key: str) -> MaskingConfig:
    async with ctx.db.read() as conn:
        return await _own_config(conn, principal, key)


async def update_config(
    ctx: ServiceContext, principal: Account, key: str, body: dict[str, Any]
) -> MaskingConfig:
    """PUT: every field is replaced (an optional one left out becomes empty)."""
    fields = rules.config_fields(body)
    async with ctx.db.write() as conn:
        config = await _own_config(conn, principal, key)
        await ctx.db.lock_keys(conn, [_name_lock(principal)])
        if await repo.name_taken(conn, principal.id, fields.name, other_than=config.id):
            raise Conflict(rules.NAME_TAKEN)
        values = {**_fields(fields), "update_time": ctx.clock.now()}
        return await repo.update_config(conn, config.id, values)


async def delete_config(ctx: ServiceContext, principal: Account, key: str) -> None:
    """Its numbers go back to the session pool."""
    async with ctx.db.write() as conn:
        config = await _own_config(conn, principal, key)
        await repo.delete_config(conn, config.id)


@dataclass(frozen=True, slots=True)
class LinkedNumber:
    number_key: str
    e164: str


def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise InvalidRequest(f"[{name} : must be a list of strings]")
    return [str(v).strip() for v in value if str(v).strip()]


async def link_numbers(
    ctx: ServiceContext, principal: Account, key: str, body: dict[str, Any]
) -> list[LinkedNumber]:
    """Give numbers (``numbers``: E.164, or ``numberKeys``) to the configuration; all or
    nothing. Numbers it already has are kept. Returns all of its numbers."""
    keys = _string_list(body, "numberKeys")
    phones = []
    for raw in _string_list(body, "numbers"):
        phone = parse_e164(raw)
        if phone is None:
            raise InvalidRequest(f"[numbers : {raw} is not a valid phone number]")
        phones.append(phone.value)
    if not keys and not phones:
        raise InvalidRequest("[numbers : may not be empty]")
    async with ctx.db.write() as conn:
        config = await _own_config(conn, principal, key)
        for e164 in phones:
            found = await number_repo.get_number(conn, e164)
            if found is None or not _sees(principal, found):
                raise NotFound(f"Number {e164.removeprefix('+')} not found.")
            keys.append(found.number_key)
        # Sorted: two requests locking overlapping numbers never wait on each other.
        for number_key in sorted(set(keys)):
            number = await _take_number(ctx, conn, principal, number_key, config.id)
            await repo.link_number(conn, number.id, config.id)
        return _linked(await repo.linked_numbers(conn, config.id))


def _linked(found: Iterable[OwnedNumber]) -> list[LinkedNumber]:
    return [LinkedNumber(n.number_key, n.e164) for n in found]


async def config_numbers(ctx: ServiceContext, principal: Account, key: str) -> list[LinkedNumber]:
    async with ctx.db.read() as conn:
        config = await _own_config(conn, principal, key)
        return _linked(await repo.linked_numbers(conn, config.id))


async def unlink_number(ctx: ServiceContext, principal: Account, key: str, number_key: str) -> None:
    """The number goes back to the session pool."""
    async with ctx.db.write() as conn:
        config = await _own_config(conn, principal, key)
        number = await repo.number_by_key(conn, number_key, lock=True)
        if number is None or not _sees(principal, number):
            raise NotFound(rules.NUMBER_NOT_FOUND)
        if number.masking_config_id != config.id:
            raise NotFound(rules.NUMBER_NOT_LINKED)
        await repo.link_number(conn, number.id, None)


# -- credentials: one pair per account ------------------------------------------------------


async def get_credentials(ctx: ServiceContext, principal: Account) -> tuple[str, str]:
    async with ctx.db.read() as conn:
        found = await repo.get_credentials(conn, principal.id)
    if found is None:
        raise NotFound(rules.CREDENTIALS_NOT_FOUND)
    return found


async def create_credentials(
    ctx: ServiceContext, principal: Account, body: dict[str, Any]
) -> tuple[str, str]:
    api_id, key = rules.credential_fields(body)
    try:
        async with ctx.db.write() as conn:
            if await repo.get_credentials(conn, principal.id) is not None:
                raise Conflict(rules.CREDENTIALS_EXIST)
            await repo.insert_credentials(conn, principal.id, api_id, key)
    except IntegrityError:  # created by a concurrent request (PostgreSQL)
        raise Conflict(rules.CREDENTIALS_EXIST) from None
    return api_id, key


async def update_credentials(
    ctx: ServiceContext, principal: Account, body: dict[str, Any]
) -> tuple[str, str]:
    api_id, key = rules.credential_fields(body)
    async with ctx.db.write() as conn:
        if await repo.get_credentials(conn, principal.id) is None:
            raise NotFound(rules.CREDENTIALS_NOT_FOUND)
        await repo.update_credentials(conn, principal.id, api_id, key)
    return api_id, key


async def delete_credentials(ctx: ServiceContext, principal: Account) -> None:
    async with ctx.db.write() as conn:
        if await repo.get_credentials(conn, principal.id) is None:
            raise NotFound(rules.CREDENTIALS_NOT_FOUND)
        await repo.delete_credentials(conn, principal.id)


# -- numbers, as clients learn their numberKeys ----------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberView:
    number: VirtualNumber
    owner: MaskingConfig | None  # None: the session pool


async def _with_owners(conn: Conn, found: Sequence[VirtualNumber]) -> list[NumberView]:
    ids = {n.masking_config_id for n in found if n.masking_config_id is not None}
    owners = await repo.configs_by_id(conn, ids)
    return [
        NumberView(n, owners.get(n.masking_config_id) if n.masking_config_id else None)
        for n in found
    ]


def parse_numbers_query(query: dict[str, str]) -> tuple[int, int]:
    """(limit, page) of ``GET /numbers/1/numbers``: 1 to 1000, default 50; page from 0."""
    values = []
    for name, default, low, high in (
        ("limit", NUMBERS_LIMIT, 1, NUMBERS_LIMIT_MAX),
        ("page", 0, 0, NUMBERS_PAGE_MAX),
    ):
        raw = query.get(name, "").strip()
        if not raw:
            values.append(default)
            continue
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise InvalidRequest(f"[{name} : must be a whole number between {low} and {high}]")
        values.append(int(raw))
    return values[0], values[1]


async def list_numbers(
    ctx: ServiceContext, principal: Account, *, limit: int, page: int
) -> tuple[list[NumberView], int]:
    """The principal's numbers, newest first, with their owners; and how many there are."""
    found, total = await number_service.list_numbers(
        ctx, principal, limit=limit, offset=limit * page
    )
    async with ctx.db.read() as conn:
        return await _with_owners(conn, found), total


async def get_number(ctx: ServiceContext, principal: Account, number_key: str) -> NumberView:
    async with ctx.db.read() as conn:
        number = await _visible_number(conn, principal, number_key)
        found = await number_repo.get_number(conn, number.e164)
        if found is None:  # removed since
            raise NotFound(rules.NUMBER_NOT_FOUND)
        return (await _with_owners(conn, [found]))[0]


async def number_owners(ctx: ServiceContext, found: Sequence[VirtualNumber]) -> list[NumberView]:
    """The numbers with their owners (operator CLI)."""
    async with ctx.db.read() as conn:
        return await _with_owners(conn, found)
