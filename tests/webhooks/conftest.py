"""Fixtures of the webhook tests: a database of each kind per module, a real receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import BACKENDS, database
from tests.webhooks.receiver import Receiver


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database (SQLite, then PostgreSQL) shared by one module's tests."""
    with database(request.param, tmp_path_factory.mktemp("webhooks")) as database_url:
        yield database_url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running
