"""Fixtures for call tests: a real ``veil serve`` whose outbound trunk is a SIPp phone,
SIPp as the inbound trunk, and Plivo's SDK to create the sessions the calls go through.

Each configuration (database, trunk transport, trunk credentials) gets one server for
the whole run; each test gets a new account and numbers, so tests never share data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import plivo
import pytest

from tests.calls.sipp import Sipp, SippResult, Transport, run
from tests.servers import Server, database, free_sip_port, veil_server
from tests.utils import Admin, LoopThread, party_number, plivo_client
from veil.domain.accounts import Account


@dataclass
class Plane:
    """One running Veil with its trunk port, and the test's account on it."""

    server: Server
    admin: Admin
    trunk_port: int
    transport: Transport
    workdir: Path
    account: Account = field(init=False)
    client: plivo.RestClient = field(init=False)

    def fresh_account(self) -> None:
        self.account = self.admin.create_account()
        self.client = plivo_client(self.server.url, self.account)

    @property
    def sip_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.sip_port)

    def session(self, **params: Any) -> dict[str, Any]:
        """A new session between two fresh parties on a fresh number; its API object
        (numbers with ``+``) is returned."""
        self.admin.add_numbers(self.account)
        params.setdefault("first_party", party_number())
        params.setdefault("second_party", party_number())
        created = self.client.masking_sessions.create_masking_session(**params)
        return self.get(created["session_uuid"])

    def get(self, session_uuid: str) -> dict[str, Any]:
        # Plain JSON (the SDK wraps nested objects), the way a customer's backend reads it.
        got = httpx.get(
            f"{self.server.url}/v1/Account/{self.account.auth_id}/Masking/Session/{session_uuid}/",
            auth=(self.account.auth_id, self.account.auth_token),
            timeout=10,
        )
        got.raise_for_status()
        obj: dict[str, Any] = got.json()["response"]
        for name in ("first_party", "second_party", "virtual_number"):
            if obj[name]:
                obj[name] = "+" + obj[name]
        return obj

    def set_session(self, session_uuid: str, **columns: int) -> None:
        """Change stored settings the API would clamp (call_time_limit >= 60 s,
        ring_timeout >= 5 s), so that timer tests take seconds, not minutes."""
        for name, value in columns.items():
            assert name in ("call_time_limit", "ring_timeout")
            self.admin.sql(
                f"UPDATE sessions SET {name} = :value WHERE uuid = :uuid",
                value=value,
                uuid=session_uuid,
            )

    def callee(self, scenario: str, callee: str, **keys: str) -> Sipp:
        """The phone behind the outbound trunk (Veil's leg B goes there)."""
        return Sipp(
            scenario,
            workdir=self.workdir,
            local_port=self.trunk_port,
            transport=self.transport,
            keys={"callee": callee, **keys},
            timeout=15,
        )

    def caller(
        self,
        scenario: str,
        caller: str,
        virtual: str,
        *,
        transport: Transport | None = None,
        **keys: str,
    ) -> SippResult:
        """The inbound trunk calling ``virtual`` from ``caller``, run to its end."""
        return run(
            scenario,
            workdir=self.workdir,
            remote=self.sip_address,
            transport=transport or self.transport,
            keys={"caller": caller, "virtual": virtual, **keys},
            timeout=15,
        )

    def call(
        self,
        caller_scenario: str,
        callee_scenario: str,
        *,
        caller: str,
        callee: str,
        virtual: str,
        caller_keys: dict[str, str] | None = None,
        callee_keys: dict[str, str] | None = None,
    ) -> tuple[SippResult, SippResult]:
        with self.callee(callee_scenario, callee, **(callee_keys or {})) as b:
            a = run(
                caller_scenario,
                workdir=self.workdir,
                remote=self.sip_address,
                transport=self.transport,
                keys={"caller": caller, "virtual": virtual, **(caller_keys or {})},
                timeout=15,
            )
            b_result = b.wait(20)
        return a, b_result


# Seconds Veil waits for an Infobip-style callback (VEIL_INFOBIP_CALLBACK_TIMEOUT): short,
# so that the fall-over to the backup URL takes a test seconds, not the default's five.
CALLBACK_TIMEOUT = 2

TRUNK_USER = "veil-trunk"
TRUNK_PASSWORD = "s3cret-Pa55"


@dataclass(frozen=True)
class PlaneConfig:
    backend: str = "sqlite"
    transport: Transport = "udp"
    credentials: bool = False
    media: str = "off"  # "auto": Veil runs rtpengine and anchors every call


class _Planes:
    def __init__(self, tmp: pytest.TempPathFactory, loop: LoopThread) -> None:
        self.tmp = tmp
        self.loop = loop
        self.stack = contextlib.ExitStack()
        self.running: dict[PlaneConfig, tuple[Server, Admin, int]] = {}

    def get(self, config: PlaneConfig) -> tuple[Server, Admin, int]:
        if config not in self.running:
            workdir = self.tmp.mktemp(f"veil-{config.backend}-{config.transport}-{config.media}")
            url = self.stack.enter_context(database(config.backend, workdir))
            trunk_port = free_sip_port()
            param = ";transport=tcp" if config.transport == "tcp" else ""
            env = {
                "VEIL_TRUNK_OUTBOUND": f"sip:127.0.0.1:{trunk_port}{param}",
                "VEIL_INFOBIP_CALLBACK_TIMEOUT": str(CALLBACK_TIMEOUT),
            }
            if config.media != "off":
                env["VEIL_MEDIA"] = config.media
                env["VEIL_RECORDINGS_DIR"] = str(workdir / "recordings")
            if config.credentials:
                env |= {"VEIL_TRUNK_USERNAME": TRUNK_USER, "VEIL_TRUNK_PASSWORD": TRUNK_PASSWORD}
            server = self.stack.enter_context(veil_server(url, workdir, **env))
            admin = Admin(url, self.loop)
            self.stack.callback(admin.close)
            self.running[config] = (server, admin, trunk_port)
        return self.running[config]


@pytest.fixture(scope="session")
def planes(tmp_path_factory: pytest.TempPathFactory, loop_thread: LoopThread) -> Iterator[_Planes]:
    planes = _Planes(tmp_path_factory, loop_thread)
    with planes.stack:
        yield planes


def make_plane(planes: _Planes, config: PlaneConfig, workdir: Path) -> Plane:
    server, admin, trunk_port = planes.get(config)
    plane = Plane(server, admin, trunk_port, config.transport, workdir)
    plane.fresh_account()
    return plane


@pytest.fixture
def plane(planes: _Planes, tmp_path: Path) -> Plane:
    """Veil on SQLite with a UDP trunk."""
    return make_plane(planes, PlaneConfig(), tmp_path)


@pytest.fixture
def tcp_plane(planes: _Planes, tmp_path: Path) -> Plane:
    """Veil on SQLite with a TCP trunk (the inbound calls come over TCP too)."""
    return make_plane(planes, PlaneConfig(transport="tcp"), tmp_path)


@pytest.fixture
def postgres_plane(planes: _Planes, tmp_path: Path) -> Plane:
    return make_plane(planes, PlaneConfig(backend="postgresql"), tmp_path)


@pytest.fixture
def media_plane(planes: _Planes, tmp_path: Path) -> Plane:
    """Veil on SQLite that runs its own rtpengine and anchors every call's media."""
    return make_plane(planes, PlaneConfig(media="auto"), tmp_path)


@pytest.fixture
def auth_plane(planes: _Planes, tmp_path: Path) -> Plane:
    """Veil whose outbound trunk asks for digest credentials."""
    return make_plane(planes, PlaneConfig(credentials=True), tmp_path)
