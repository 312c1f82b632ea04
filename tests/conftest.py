"""Fixtures: real databases (SQLite and PostgreSQL), a real ``veil serve`` on each, and
Plivo's official SDK as the client."""

from __future__ import annotations

import os
from collections.abc import Iterator

import plivo
import pytest

from tests.servers import BACKENDS, Server, database, veil_server
from tests.utils import Admin, LoopThread, plivo_client
from veil.domain.accounts import Account


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VEIL_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("VEIL_") and name != "VEIL_TEST_POSTGRES":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with database(request.param, tmp_path_factory.mktemp(request.param)) as url:
        yield url


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # With its own rtpengine: sessions that record, ask PINs or play URLs need media.
    workdir = tmp_path_factory.mktemp("server")
    with veil_server(
        database_url,
        workdir,
        VEIL_MEDIA="auto",
        VEIL_RECORDINGS_DIR=str(workdir / "recordings"),
    ) as running:
        yield running


@pytest.fixture(scope="session")
def admin(database_url: str, loop_thread: LoopThread) -> Iterator[Admin]:
    helper = Admin(database_url, loop_thread)
    yield helper
    helper.close()


@pytest.fixture
def account(admin: Admin) -> Account:
    """A new main account for each test, so tests never see each other's data."""
    return admin.create_account()


@pytest.fixture
def client(server: Server, account: Account) -> plivo.RestClient:
    return plivo_client(server.url, account)
