"""Factories and helpers shared by the tests."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import plivo
import plivo.rest.client as plivo_rest
from sqlalchemy import text

from veil.clock import FakeClock, SystemClock
from veil.domain.accounts import Account
from veil.domain.session_params import Profile, parse_create
from veil.service import accounts as account_service
from veil.service import numbers as number_service
from veil.service import sessions as session_service
from veil.service.context import ServiceContext
from veil.store.db import Database

T = TypeVar("T")

# Valid numbers, unique for the whole test run: pool numbers and party numbers come from
# different ranges so a test can never confuse them.
_POOL = {"US": "+1415", "IN": "+9190", "DE": "+4915"}
_PARTY = {"US": "+1646", "IN": "+9198", "DE": "+4917"}
_WIDTH = {"US": 7, "IN": 8, "DE": 9}
_counter = itertools.count(2_000_000)


def _fresh(prefixes: dict[str, str], country: str) -> str:
    return prefixes[country] + str(next(_counter)).rjust(_WIDTH[country], "0")


def pool_number(country: str = "US") -> str:
    """A new virtual number, never used before in this run."""
    return _fresh(_POOL, country)


def party_number(country: str = "US") -> str:
    """A new real (party) number, never used before in this run."""
    return _fresh(_PARTY, country)


class LoopThread:
    """An event loop in a thread, so synchronous tests can await service calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class Admin:
    """The operator's side of a test: accounts, numbers and direct database access,
    through Veil's own service layer on the same database the server uses."""

    def __init__(self, url: str, loop: LoopThread) -> None:
        self.url = url
        self.loop = loop
        self.db = loop.run(_make_db(url))
        self.ctx = ServiceContext(db=self.db, clock=SystemClock())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro)

    def create_account(self, name: str = "Acme", parent: Account | None = None) -> Account:
        return self.run(
            account_service.create_account(
                self.ctx, name=name, parent_auth_id=parent.auth_id if parent else None
            )
        )

    def add_numbers(
        self,
        account: Account,
        count: int = 1,
        country: str = "US",
        *,
        subaccount: Account | None = None,
        reserved: bool = False,
    ) -> list[str]:
        numbers = [pool_number(country) for _ in range(count)]
        self.run(
            number_service.add_numbers(
                self.ctx,
                account,
                numbers,
                subaccount=subaccount.auth_id if subaccount else None,
                details=number_service.NumberDetails(reserved=reserved),
            )
        )
        return numbers

    def sql(self, statement: str, **params: Any) -> list[Any]:
        async def go() -> list[Any]:
            async with self.db.write() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []

        return self.run(go())

    def close(self) -> None:
        self.run(self.db.dispose())


async def _make_db(url: str) -> Database:
    return Database(url)


def plivo_client(base_url: str, account: Account) -> plivo.RestClient:
    """Plivo's official SDK pointed at a Veil server (plivo-wire.md section 2.6)."""
    base = base_url + "/v1/Account"
    plivo_rest.API_VOICE_BASE_URI = base
    plivo_rest.API_VOICE_BASE_URI_FALLBACK_1 = base
    plivo_rest.API_VOICE_BASE_URI_FALLBACK_2 = base
    plivo_rest.PLIVO_API_BASE_URI = base
    return plivo.RestClient(account.auth_id, account.auth_token)


async def sessions_that_never_meet(
    ctx: ServiceContext, account: Account, count: int, *, expiry: int | None = None
) -> None:
    """``count`` sessions, each of two parties of its own: Veil's policy stacks them all
    on one number (the most loaded). ``expiry``: each one's, varied with the index when
    given (``expiry + (i * 37) % 7200`` seconds), Plivo's default otherwise. The clock
    moves one second after each."""
    assert isinstance(ctx.clock, FakeClock)
    for i in range(count):
        body: dict[str, object] = {"first_party": party_number(), "second_party": party_number()}
        if expiry is not None:
            body["session_expiry"] = expiry + (i * 37) % 7200
        await session_service.create_session(ctx, account, parse_create(body, Profile.CURRENT))
        ctx.clock.advance(1)
