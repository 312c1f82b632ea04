"""The ``veil`` command (DESIGN.md, "The operator's contract").

Every command prints JSON with ``--json``. On SQLite (one process owns the file) the
schema is brought up to date automatically; on PostgreSQL, where several nodes share
the database, ``veil db upgrade`` is an explicit step and ``serve`` refuses an old schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from veil.api.plivo.shapes import pool_report_object
from veil.clock import SystemClock
from veil.config import Settings, load_settings, split_host_port
from veil.domain.errors import VeilError
from veil.domain.infobip import MaskingConfig
from veil.domain.numbers import VirtualNumber
from veil.domain.pool_report import PoolReport
from veil.service import accounts as account_service
from veil.service import infobip as infobip_service
from veil.service import numbers as number_service
from veil.service import pool_report as pool_service
from veil.service.context import ServiceContext
from veil.store import accounts as account_repo
from veil.store import migrate
from veil.store.db import Database

T = TypeVar("T")


class CliError(Exception):
    pass


def _prepare_schema(settings: Settings, *, upgrade: bool) -> None:
    url = settings.database_url
    if upgrade or url.startswith("sqlite"):
        migrate.upgrade(url)
    elif not migrate.is_current(url):
        raise CliError("the database schema is not current: run `veil db upgrade` first")


def _run(settings: Settings, work: Callable[[ServiceContext], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(settings.database_url)
        try:
            return await work(ServiceContext(db=db, clock=SystemClock()))
        finally:
            await db.dispose()

    return asyncio.run(main())


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _number_json(number: VirtualNumber, owner: MaskingConfig | None = None) -> dict[str, Any]:
    """A number; ``owner`` is the Infobip-style action or configuration it belongs to
    (None: the masking-session pool)."""
    return {
        "number": number.e164,
        "country": number.country,
        "account_id": number.account_id,
        "subaccount": number.subaccount or None,
        "reserved": number.reserved,
        "alias": number.alias,
        "number_key": number.number_key,
        "owner": owner.key if owner is not None else "pool",
        "owner_kind": owner.kind.value if owner is not None else "pool",
    }


async def _account_by_auth_id(ctx: ServiceContext, auth_id: str) -> Any:
    async with ctx.db.read() as conn:
        account = await account_repo.get_by_auth_id(conn, auth_id)
    if account is None:
        raise CliError(f"no account {auth_id}")
    return account


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from veil.app import build_app

    _prepare_schema(settings, upgrade=False)
    host, port = split_host_port(settings.http_listen)
    config = uvicorn.Config(
        build_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=True)
    revision = migrate.head_revision()
    _print(args, {"revision": revision}, f"database is at revision {revision}")


def cmd_accounts_create(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=False)
    account = _run(
        settings,
        lambda ctx: account_service.create_account(ctx, name=args.name, parent_auth_id=args.parent),
    )
    _print(
        args,
        {
            "auth_id": account.auth_id,
            "auth_token": account.auth_token,
            "name": account.name,
            "parent": args.parent,
        },
        f"auth_id:    {account.auth_id}\nauth_token: {account.auth_token}",
    )


def cmd_accounts_list(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=False)
    found = _run(settings, account_service.list_accounts)
    rows = [
        {"auth_id": a.auth_id, "name": a.name, "enabled": a.enabled, "subaccount": a.is_subaccount}
        for a in found
    ]
    _print(args, rows, "\n".join(f"{r['auth_id']}  {r['name']}" for r in rows))


def cmd_numbers_add(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=False)

    async def work(ctx: ServiceContext) -> list[VirtualNumber]:
        principal = await _account_by_auth_id(ctx, args.account)
        details = number_service.NumberDetails(reserved=args.reserved, carrier=args.carrier)
        return await number_service.add_numbers(
            ctx, principal, args.numbers, subaccount=args.subaccount, details=details
        )

    added = _run(settings, work)
    _print(args, [_number_json(n) for n in added], "\n".join(f"added {n.e164}" for n in added))


def cmd_numbers_list(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=False)

    async def work(ctx: ServiceContext) -> list[infobip_service.NumberView]:
        if args.account is None:
            found = await number_service.list_all_numbers(ctx)
        else:
            principal = await _account_by_auth_id(ctx, args.account)
            found, _ = await number_service.list_numbers(ctx, principal)
        return await infobip_service.number_owners(ctx, found)

    views = _run(settings, work)
    lines = []
    for view in views:
        number, owner = view.number, view.owner
        line = f"{number.e164}  {number.country}{'  reserved' if number.reserved else ''}"
        lines.append(line + (f"  {owner.kind.value} {owner.key}" if owner else ""))
    _print(args, [_number_json(v.number, v.owner) for v in views], "\n".join(lines))


_REPORT_HEADER = (
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
)


def _report_json(auth_id: str, report: PoolReport) -> dict[str, Any]:
    return {"account": auth_id, **pool_report_object(report)}


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def cmd_numbers_report(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=False)

    async def work(ctx: ServiceContext) -> list[tuple[str, PoolReport]]:
        if args.account is None:
            return await pool_service.all_pool_reports(ctx)
        principal = await _account_by_auth_id(ctx, args.account)
        return await pool_service.account_pool_reports(ctx, principal)

    reports = _run(settings, work)
    data = [_report_json(auth_id, r) for auth_id, r in reports]
    # "-" for the main account's own pool: an empty cell would shift the columns.
    rows = [_REPORT_HEADER, *(tuple(str(v) if v != "" else "-" for v in d.values()) for d in data)]
    _print(args, data, _table(rows))


def cmd_numbers_remove(args: argparse.Namespace, settings: Settings) -> None:
    _prepare_schema(settings, upgrade=False)
    _run(settings, lambda ctx: number_service.remove_number(ctx, None, args.number))
    _print(args, {"removed": args.number}, f"removed {args.number}")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML settings file (environment wins)")
    common.add_argument("--json", action="store_true", help="print JSON")

    parser = argparse.ArgumentParser(prog="veil", description="Veil number masking")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the API and call plane")
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(required=True)
    db.add_parser("upgrade", parents=[common], help="apply migrations").set_defaults(
        func=cmd_db_upgrade
    )

    accounts = commands.add_parser("accounts", help="accounts").add_subparsers(required=True)
    create = accounts.add_parser("create", parents=[common], help="create an account")
    create.add_argument("--name", required=True)
    create.add_argument("--parent", metavar="AUTH_ID", help="create a subaccount of this account")
    create.set_defaults(func=cmd_accounts_create)
    accounts.add_parser("list", parents=[common], help="list accounts").set_defaults(
        func=cmd_accounts_list
    )

    numbers = commands.add_parser("numbers", help="the virtual number pool").add_subparsers(
        required=True
    )
    add = numbers.add_parser("add", parents=[common], help="add numbers to an account's pool")
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    add.add_argument("--account", required=True, metavar="AUTH_ID")
    add.add_argument("--subaccount", metavar="AUTH_ID", help="scope the numbers to a subaccount")
    add.add_argument("--reserved", action="store_true", help="exclude from automatic allocation")
    add.add_argument("--carrier", default="", help="the carrier the numbers come from")
    add.set_defaults(func=cmd_numbers_add)
    listing = numbers.add_parser("list", parents=[common], help="list numbers")
    listing.add_argument("--account", metavar="AUTH_ID")
    listing.set_defaults(func=cmd_numbers_list)
    report = numbers.add_parser(
        "report", parents=[common], help="pool sizes against the last 7 days of sessions"
    )
    report.add_argument("--account", metavar="AUTH_ID", help="one account's pools only")
    report.set_defaults(func=cmd_numbers_report)
    remove = numbers.add_parser("remove", parents=[common], help="remove a number")
    remove.add_argument("number", metavar="NUMBER")
    remove.set_defaults(func=cmd_numbers_remove)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"veil: bad settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Migrations report each step; only `veil db upgrade` is about them.
    if args.func is not cmd_db_upgrade:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        args.func(args, settings)
    except (CliError, VeilError) as exc:
        print(f"veil: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
