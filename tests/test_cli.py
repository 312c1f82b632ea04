"""The ``veil`` command as an operator runs it: a real process on a real database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import plivo
import pytest

from tests.servers import POSTGRES_ADMIN_URL, _admin_sql
from tests.utils import party_number, pool_number
from veil.clock import SystemClock
from veil.config import Settings
from veil.domain.accounts import Account
from veil.domain.session_params import Profile, parse_create
from veil.service import infobip as infobip_service
from veil.service import sessions as session_service
from veil.service.context import ServiceContext
from veil.store import accounts as account_repo
from veil.store.db import Database
from veil.webhooks.delivery import DeliveryConfig


def veil(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "veil.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_accounts_and_numbers_on_the_embedded_default(tmp_path: Path) -> None:
    # No settings at all: SQLite in ./veil.db, created and migrated on first use.
    made = veil("accounts", "create", "--name", "Acme Rides", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    account = json.loads(made.stdout)
    assert len(account["auth_id"]) == 20 and account["auth_id"].startswith("MA")
    assert len(account["auth_token"]) == 40
    plivo.RestClient(account["auth_id"], account["auth_token"])  # the SDK checks the shape
    assert (tmp_path / "veil.db").exists()

    sub = json.loads(
        veil(
            "accounts",
            "create",
            "--name",
            "EU",
            "--parent",
            account["auth_id"],
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert sub["auth_id"].startswith("SA")

    first, second = pool_number(), pool_number()
    added = veil(
        "numbers",
        "add",
        first,
        second.lstrip("+"),
        "--account",
        account["auth_id"],
        "--json",
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    assert [n["number"] for n in json.loads(added.stdout)] == [first, second]

    scoped = pool_number()
    assert (
        veil(
            "numbers",
            "add",
            scoped,
            "--account",
            account["auth_id"],
            "--subaccount",
            sub["auth_id"],
            "--reserved",
            cwd=tmp_path,
        ).returncode
        == 0
    )

    listed = json.loads(veil("numbers", "list", "--json", cwd=tmp_path).stdout)
    by_number = {n["number"]: n for n in listed}
    assert set(by_number) == {first, second, scoped}
    assert by_number[scoped]["subaccount"] == sub["auth_id"] and by_number[scoped]["reserved"]

    assert veil("numbers", "remove", first, cwd=tmp_path).returncode == 0
    listed = json.loads(
        veil("numbers", "list", "--account", account["auth_id"], "--json", cwd=tmp_path).stdout
    )
    assert {n["number"] for n in listed} == {second, scoped}


@contextlib.asynccontextmanager
async def _acting_as(tmp_path: Path, auth_id: str) -> AsyncIterator[tuple[ServiceContext, Account]]:
    """The service layer on the CLI's database, as the account ``auth_id``."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'veil.db'}")
    try:
        async with db.read() as conn:
            principal = await account_repo.get_by_auth_id(conn, auth_id)
        assert principal is not None
        yield ServiceContext(db=db, clock=SystemClock()), principal
    finally:
        await db.dispose()


def test_numbers_list_shows_keys_and_owners(tmp_path: Path) -> None:
    account = json.loads(veil("accounts", "create", "--name", "A", "--json", cwd=tmp_path).stdout)
    pooled, owned = pool_number(), pool_number()
    added = veil("numbers", "add", pooled, owned, "--account", account["auth_id"], cwd=tmp_path)
    assert added.returncode == 0, added.stderr

    async def give_to_a_configuration() -> str:
        async with _acting_as(tmp_path, account["auth_id"]) as (ctx, principal):
            config = await infobip_service.create_config(
                ctx, principal, {"name": "Rides", "callbackUrl": "http://127.0.0.1:9/cb"}
            )
            await infobip_service.link_numbers(ctx, principal, config.key, {"numbers": [owned]})
            return config.key

    key = asyncio.run(give_to_a_configuration())
    listed = json.loads(veil("numbers", "list", "--json", cwd=tmp_path).stdout)
    by_number = {n["number"]: n for n in listed}
    assert all(len(n["number_key"]) == 32 for n in listed)
    assert by_number[pooled]["number_key"] != by_number[owned]["number_key"]
    assert (by_number[pooled]["owner"], by_number[pooled]["owner_kind"]) == ("pool", "pool")
    assert (by_number[owned]["owner"], by_number[owned]["owner_kind"]) == (key, "config")
    text = veil("numbers", "list", cwd=tmp_path).stdout
    assert f"{owned}  US  config {key}" in text.splitlines()


def test_errors_are_reported_with_a_nonzero_exit(tmp_path: Path) -> None:
    missing = veil("numbers", "add", pool_number(), "--account", "MA" + "X" * 18, cwd=tmp_path)
    assert missing.returncode == 1 and "no account" in missing.stderr

    account = json.loads(veil("accounts", "create", "--name", "A", "--json", cwd=tmp_path).stdout)
    bad = veil("numbers", "add", "12345", "--account", account["auth_id"], cwd=tmp_path)
    assert bad.returncode == 1 and "not a valid phone number" in bad.stderr

    settings = veil("accounts", "list", cwd=tmp_path, env={"VEIL_DATABASE_URL": "mysql://x"})
    assert settings.returncode == 2 and "VEIL_DATABASE_URL" in settings.stderr


def test_config_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "veil.toml"
    config.write_text(f'database_url = "sqlite+aiosqlite:///{tmp_path / "from-toml.db"}"\n')
    made = veil("accounts", "create", "--name", "A", "--config", str(config), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "from-toml.db").exists()

    # The environment wins over the file.
    env = {"VEIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'from-env.db'}"}
    made = veil("accounts", "create", "--name", "B", "--config", str(config), cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "from-env.db").exists()


def test_serve_refuses_an_unmigrated_postgresql(tmp_path: Path) -> None:
    name = "veil_test_" + uuid.uuid4().hex[:12]
    _admin_sql(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        refused = veil("serve", cwd=tmp_path, env={"VEIL_DATABASE_URL": url})
        assert refused.returncode == 1 and "veil db upgrade" in refused.stderr
        upgraded = veil("db", "upgrade", "--json", cwd=tmp_path, env={"VEIL_DATABASE_URL": url})
        assert upgraded.returncode == 0, upgraded.stderr
        assert json.loads(upgraded.stdout)["revision"]
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("env", "blocked"),
    [
        ({}, False),  # the embedded default: everything on loopback
        ({"VEIL_PROFILE": "production"}, True),
        ({"VEIL_PROFILE": "production", "VEIL_WEBHOOK_BLOCK_PRIVATE": "false"}, False),
        ({"VEIL_WEBHOOK_BLOCK_PRIVATE": "true"}, True),
    ],
)
def test_private_callback_targets_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], blocked: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.block_private_targets is blocked
    assert DeliveryConfig.from_settings(settings).block_private is blocked


def test_numbers_report_prints_each_pool(tmp_path: Path) -> None:
    account = json.loads(veil("accounts", "create", "--name", "A", "--json", cwd=tmp_path).stdout)
    numbers = [pool_number() for _ in range(3)]
    added = veil("numbers", "add", *numbers, "--account", account["auth_id"], cwd=tmp_path)
    assert added.returncode == 0, added.stderr

    async def an_agent_in_two_sessions() -> None:
        async with _acting_as(tmp_path, account["auth_id"]) as (ctx, principal):
            agent = party_number()
            for _ in range(2):
                body = {"first_party": agent, "second_party": party_number()}
                await session_service.create_session(
                    ctx, principal, parse_create(body, Profile.CURRENT)
                )

    asyncio.run(an_agent_in_two_sessions())
    made = veil(
        "accounts", "create", "--name", "EU", "--parent", account["auth_id"], "--json", cwd=tmp_path
    )
    sub = json.loads(made.stdout)["auth_id"]
    scoped = veil(
        "numbers",
        "add",
        pool_number(),
        "--account",
        account["auth_id"],
        "--subaccount",
        sub,
        cwd=tmp_path,
    )
    assert scoped.returncode == 0, scoped.stderr

    shown = veil("numbers", "report", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    header, row, idle = shown.stdout.splitlines()
    assert header.split() == [
        "ACCOUNT",
        "SUBACCOUNT",
        "COUNTRY",
        "NUMBERS",
        "IN_USE",
        "N_NOW",
        "N_7D",
        "NEEDED_7D",
        "PLIVO_2N-1",
        "HEADROOM",
        "STATUS",
    ]
    expected = [account["auth_id"], "-", "US", "3", "2", "2", "2", "2", "3", "1", "ok"]
    assert row.split() == expected
    assert header.index("STATUS") == row.index("ok")  # aligned under its header
    assert idle.split() == [account["auth_id"], sub, "US", "1", "0", "0", "0", "0", "0", "1", "ok"]

    one = veil("numbers", "report", "--account", account["auth_id"], "--json", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    mine, _ = json.loads(one.stdout)  # and its subaccount's pool
    assert mine == {
        "account": account["auth_id"],
        "subaccount": "",
        "country": "US",
        "numbers": 3,
        "in_use": 2,
        "busiest_party_now": 2,
        "busiest_party_7d": 2,
        "needed_7d": 2,
        "plivo_rule_7d": 3,
        "headroom": 1,
        "status": "ok",
    }
    # A subaccount's own pool only, under its main account.
    as_sub = veil("numbers", "report", "--account", sub, "--json", cwd=tmp_path)
    assert [(r["account"], r["subaccount"]) for r in json.loads(as_sub.stdout)] == [
        (account["auth_id"], sub)
    ]
    missing = veil("numbers", "report", "--account", "MA" + "X" * 18, cwd=tmp_path)
    assert missing.returncode == 1 and "no account" in missing.stderr
