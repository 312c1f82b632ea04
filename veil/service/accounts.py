"""Accounts and subaccounts: creation, lookup and authentication."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.errors import AuthenticationFailed, InvalidRequest, NotFound
from veil.domain.ids import is_auth_id, new_auth_id, new_auth_token
from veil.service.context import ServiceContext
from veil.store import accounts as repo
from veil.store.db import Conn

# How long an authenticated account is remembered. Keeps a database read off every
# request; a disabled account or a new token takes effect within this time.
AUTH_CACHE_SECONDS = 5.0
API_KEY_MAX = 64  # characters: the accounts.auth_token column


async def create_account(
    ctx: ServiceContext, *, name: str, parent_auth_id: str | None = None, enabled: bool = True
) -> Account:
    """A new main account, or a subaccount of ``parent_auth_id``."""
    name = name.strip()
    if not name:
        raise InvalidRequest(messages.missing("name"))
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        parent_id = None
        if parent_auth_id is not None:
            parent = await repo.get_by_auth_id(conn, parent_auth_id)
            if parent is None or parent.is_subaccount:
                raise NotFound(messages.ACCOUNT_NOT_FOUND)
            parent_id = parent.id
        return await repo.insert_account(
            conn,
            auth_id=new_auth_id(sub=parent_id is not None),
            auth_token=new_auth_token(),
            name=name,
            parent_id=parent_id,
            enabled=enabled,
            now=now,
        )


async def list_accounts(ctx: ServiceContext) -> list[Account]:
    async with ctx.db.read() as conn:
        found, _ = await repo.list_accounts(conn)
    return found


async def acting_as(
    ctx: ServiceContext, principal: Account, subaccount: str | None, *, enabled_only: bool = False
) -> Account:
    """The account a request names with ``subaccount``: the principal itself when it names
    nothing or itself, else one of the principal's own subaccounts."""
    if not subaccount or subaccount == principal.auth_id:
        return principal
    if principal.is_subaccount or not is_auth_id(subaccount):
        raise InvalidRequest(messages.SUBACCOUNT_NOT_FOUND)
    async with ctx.db.read() as conn:
        sub = await repo.get_by_auth_id(conn, subaccount)
    if sub is None or sub.parent_id != principal.id or (enabled_only and not sub.enabled):
        raise InvalidRequest(messages.SUBACCOUNT_NOT_FOUND)
    return sub


async def get_subaccount(ctx: ServiceContext, principal: Account, auth_id: str) -> Account:
    """A subaccount the principal may see: its own child, or itself."""
    if not is_auth_id(auth_id):
        raise NotFound(messages.RESOURCE_NOT_FOUND)
    async with ctx.db.read() as conn:
        found = await repo.get_by_auth_id(conn, auth_id)
    if found is None or not (found.parent_id == principal.id or found.id == principal.id):
        raise NotFound(messages.RESOURCE_NOT_FOUND)
    return found


async def list_subaccounts(
    ctx: ServiceContext, principal: Account, *, limit: int, offset: int
) -> tuple[list[Account], int]:
    if principal.is_subaccount:
        return [], 0
    async with ctx.db.read() as conn:
        return await repo.list_accounts(conn, parent_id=principal.id, limit=limit, offset=offset)


async def update_subaccount(
    ctx: ServiceContext, principal: Account, auth_id: str, *, name: str | None, enabled: bool | None
) -> Account:
    sub = await get_subaccount(ctx, principal, auth_id)
    if sub.id == principal.id:
        raise NotFound(messages.RESOURCE_NOT_FOUND)  # a subaccount cannot edit itself
    values: dict[str, object] = {}
    if name is not None and name.strip():
        values["name"] = name.strip()
    if enabled is not None:
        values["enabled"] = enabled
    async with ctx.db.write() as conn:
        await repo.update_account(conn, sub.id, now=ctx.clock.now(), **values)
        updated = await repo.get_by_id(conn, sub.id)
    assert updated is not None
    return updated


@dataclass(slots=True)
class _Cached:
    account: Account
    until: float


class Authenticator:
    """Checks credentials against accounts, with a short cache: HTTP Basic (auth_id and
    auth_token) and, for the Infobip-compatible API, ``App <api key>`` (the auth_token)."""

    def __init__(self, ctx: ServiceContext, ttl: float = AUTH_CACHE_SECONDS) -> None:
        self._ctx = ctx
        self._ttl = ttl
        self._cache: dict[str, _Cached] = {}
        self._by_api_key: dict[str, _Cached] = {}

    async def authenticate(self, auth_id: str, auth_token: str) -> Account:
        """The enabled account these credentials belong to, else ``AuthenticationFailed``."""
        account = await self._lookup(auth_id) if is_auth_id(auth_id) else None
        if (
            account is None
            or not account.enabled
            or not hmac.compare_digest(account.auth_token.encode(), auth_token.encode())
        ):
            raise AuthenticationFailed(messages.AUTH_FAILED)
        return account

    async def authenticate_api_key(self, api_key: str) -> Account:
        """The enabled account whose auth_token is ``api_key``, else ``AuthenticationFailed``."""
        account = None
        if 0 < len(api_key) <= API_KEY_MAX:
            account = await self._cached(self._by_api_key, api_key, repo.get_by_auth_token)
        if (
            account is None
            or not account.enabled
            or not hmac.compare_digest(account.auth_token.encode(), api_key.encode())
        ):
            raise AuthenticationFailed(messages.AUTH_FAILED)
        return account

    async def _lookup(self, auth_id: str) -> Account | None:
        return await self._cached(self._cache, auth_id, repo.get_by_auth_id)

    async def _cached(
        self,
        cache: dict[str, _Cached],
        key: str,
        find: Callable[[Conn, str], Awaitable[Account | None]],
    ) -> Account | None:
        now = time.monotonic()
        cached = cache.get(key)
        if cached is not None and cached.until > now:
            return cached.account
        async with self._ctx.db.read() as conn:
            account = await find(conn, key)
            if account is not None and account.parent_id is not None:
                # A subaccount of a disabled main account is disabled too.
                parent = await repo.get_by_id(conn, account.parent_id)
                if parent is None or not parent.enabled:
                    account = replace(account, enabled=False)
        if account is None:
            cache.pop(key, None)
            return None
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = _Cached(account, now + self._ttl)
        return account
