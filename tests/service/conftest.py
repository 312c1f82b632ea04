"""In-process service tests: Veil's use cases on a real database with a FakeClock.

These databases are separate from the ones behind the server fixture, whose sweeper
runs on the wall clock and would expire sessions living in fake time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from tests.servers import BACKENDS, database
from veil.clock import FakeClock
from veil.service.context import ServiceContext
from veil.store.db import Database

T = TypeVar("T")


@pytest.fixture(scope="session", params=BACKENDS)
def service_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with database(request.param, tmp_path_factory.mktemp("service")) as url:
        yield url


Scenario = Callable[[ServiceContext, FakeClock], Awaitable[T]]


def run_scenario(url: str, scenario: Scenario[T]) -> T:
    """Run ``scenario`` on its own event loop with a fresh context and clock."""

    async def main() -> T:
        db = Database(url)
        clock = FakeClock()
        try:
            return await scenario(ServiceContext(db=db, clock=clock), clock)
        finally:
            await db.dispose()

    return asyncio.run(main())
