"""The pool report: each pool's size against what its last week of sessions needed.

The figures are defined in veil.domain.pool_report; the replay of the window is
veil.domain.pool_replay, the same policy the allocator applies.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from veil.domain.accounts import Account
from veil.domain.pool_replay import Policy, TraceSession, busiest_party, pool_needed
from veil.domain.pool_report import REPORT_WINDOW, PoolReport, holds_number_after, trace_session
from veil.service import accounts
from veil.service.context import ServiceContext
from veil.store import pool_report as repo
from veil.store.db import Conn


async def pool_report(
    ctx: ServiceContext, principal: Account, *, subaccount: str | None = None
) -> list[PoolReport]:
    """The pools the principal sees, as ``list_numbers`` scopes its numbers: a main
    account's own and its subaccounts' (or one subaccount's with ``subaccount``); a
    subaccount's own only."""
    return [report for _, report in await account_pool_reports(ctx, principal, subaccount)]


async def account_pool_reports(
    ctx: ServiceContext, principal: Account, subaccount: str | None = None
) -> list[tuple[str, PoolReport]]:
    """``pool_report``, each with its main account's auth_id (operator CLI)."""
    named = await accounts.acting_as(ctx, principal, subaccount)
    scope = repo.Scope(principal.main_account_id, named.id if named.is_subaccount else None)
    return await _reports(ctx, scope)


async def all_pool_reports(ctx: ServiceContext) -> list[tuple[str, PoolReport]]:
    """Every account's pools, each with its main account's auth_id (operator CLI)."""
    return await _reports(ctx, repo.Scope())


async def _reports(ctx: ServiceContext, scope: repo.Scope) -> list[tuple[str, PoolReport]]:
    now = ctx.clock.now()
    since = now - REPORT_WINDOW
    async with ctx.db.read() as conn:
        sizes = await repo.pool_sizes(conn, scope)
        in_use = await repo.numbers_in_use(conn, scope, now)
        held_now = await repo.busiest_party_now(conn, scope, now)
        traffic = _traces(await repo.window_sessions(conn, scope, since), since)
        # Pools without numbers left still show the traffic they carried.
        pools = sorted(set(sizes) | set(traffic), key=_order)
        names = await _names(conn, pools)
    # The replays cost about 0.02-0.03 ms of CPU per session and pool size tried: run
    # them off the event loop, which keeps serving calls and API requests meanwhile.
    figures = await asyncio.to_thread(_replay_all, [traffic.get(pool, []) for pool in pools])
    reports = []
    for pool, (busiest, needed) in zip(pools, figures, strict=True):
        report = PoolReport(
            subaccount=names[pool.subaccount_id] if pool.subaccount_id is not None else "",
            country=pool.country,
            numbers=sizes.get(pool, 0),
            in_use=in_use.get(pool, 0),
            busiest_party_now=held_now.get(pool, 0),
            busiest_party_7d=busiest,
            needed_7d=needed,
        )
        reports.append((names[pool.account_id], report))
    return reports


def _replay_all(weeks: Sequence[Sequence[TraceSession]]) -> list[tuple[int, int]]:
    """N and the pool Veil's policy needs, for each pool's sessions."""
    return [(busiest_party(week), pool_needed(week, Policy.VEIL)) for week in weeks]


def _traces(
    found: Sequence[repo.WindowSession], since: datetime
) -> dict[repo.PoolKey, list[TraceSession]]:
    """Each pool's sessions that held a number during the window, as replay traces."""
    traces: defaultdict[repo.PoolKey, list[TraceSession]] = defaultdict(list)
    for s in found:
        if not holds_number_after(s.expiry_time, s.cooloff, since):
            continue
        traces[s.pool].append(
            trace_session(
                created_time=s.created_time,
                expiry_time=s.expiry_time,
                cooloff_seconds=s.cooloff,
                parties=(s.first_party, s.second_party),
                window_start=since,
            )
        )
    return traces


def _order(pool: repo.PoolKey) -> tuple[int, bool, int, str]:
    """By account, the main account's own pools first, then by subaccount and country."""
    return (pool.account_id, pool.subaccount_id is not None, pool.subaccount_id or 0, pool.country)


async def _names(conn: Conn, pools: Sequence[repo.PoolKey]) -> dict[int, str]:
    ids = [p.account_id for p in pools] + [p.subaccount_id for p in pools if p.subaccount_id]
    return await repo.auth_ids(conn, ids)
