"""What became of the webhooks: the account's view (Veil's Webhook resource, its
deliveries and their attempts) and the operator's (the figures behind ``/metrics``).

Both only read the outbox that ``veil.webhooks.delivery`` drains. The resource is scoped
as sessions are: a subaccount sees its own deliveries, a main account those of its whole
tree, or of one subaccount with the ``subaccount`` filter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from veil.domain import messages
from veil.domain.accounts import Account
from veil.domain.delivery import OutboxStatus
from veil.domain.errors import InvalidRequest, NotFound
from veil.domain.ids import is_uuid
from veil.domain.list_filters import DEFAULT_WINDOW, parse_paging
from veil.service import accounts
from veil.service.context import ServiceContext
from veil.store import deliveries as repo
from veil.store.deliveries import Attempt as Attempt
from veil.store.deliveries import DeliveryView as DeliveryView
from veil.store.deliveries import OutboxCounts as OutboxCounts

_STATUS_VALUES = "pending, delivered, dead or all"
EVENT_MAX = 64  # characters: the outbox's event column

# The latency summary: deliveries of the last hour, at most this many of them.
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_SLACK = timedelta(hours=1)  # see repo.recent_latencies
LATENCY_SAMPLE = 10_000
QUANTILES = (0.5, 0.9, 0.99)


# --- The Webhook resource ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookFilter:
    since: datetime  # the window's start: deliveries written since
    status: OutboxStatus | None = None  # None: all
    session_uuid: str | None = None
    event: str | None = None
    subaccount: str | None = None
    limit: int = 20
    offset: int = 0
    # The query parameters as understood, to rebuild next/previous links.
    echo: dict[str, str] = field(default_factory=dict)


def parse_webhook_query(items: Iterable[tuple[str, str]], now: datetime) -> WebhookFilter:
    """The list's query parameters as a filter; unknown parameters are ignored. The list
    covers the last seven days, as Plivo's lists do by default."""
    values: dict[str, str] = {}
    for key, value in items:
        values[key.strip().lower()] = value.strip()
    status: OutboxStatus | None = None
    raw_status = values.get("status", "").lower()
    if raw_status and raw_status != "all":
        try:
            status = OutboxStatus(raw_status)
        except ValueError:
            raise InvalidRequest(messages.not_one_of("status", _STATUS_VALUES)) from None
    limit, offset = parse_paging(values)
    named = ("session_uuid", "event", "subaccount")
    echo = {name: values[name] for name in named if values.get(name)}
    if raw_status:
        echo["status"] = raw_status
    return WebhookFilter(
        status=status,
        session_uuid=values.get("session_uuid") or None,
        event=values.get("event") or None,
        subaccount=values.get("subaccount") or None,
        since=now - DEFAULT_WINDOW,
        limit=limit,
        offset=offset,
        echo=echo,
    )


async def list_webhooks(
    ctx: ServiceContext, principal: Account, filters: WebhookFilter
) -> tuple[list[DeliveryView], int]:
    """The principal's deliveries of the window, newest first, with the total."""
    named = await accounts.acting_as(ctx, principal, filters.subaccount)
    if (filters.session_uuid is not None and not is_uuid(filters.session_uuid)) or (
        filters.event is not None and len(filters.event) > EVENT_MAX
    ):
        return [], 0  # matches nothing; no need to ask the database
    async with ctx.db.read() as conn:
        return await repo.list_deliveries(
            conn,
            main_account_id=principal.main_account_id,
            account_id=named.id if named.is_subaccount else None,
            since=filters.since,
            status=filters.status,
            session_uuid=filters.session_uuid,
            event=filters.event,
            limit=filters.limit,
            offset=filters.offset,
        )


@dataclass(frozen=True, slots=True)
class WebhookDetail:
    delivery: DeliveryView
    attempts: list[Attempt]  # first first


def _visible(principal: Account, delivery: DeliveryView) -> bool:
    """The sessions' rule: a subaccount sees its own, a main account all of its tree."""
    if principal.is_subaccount:
        return delivery.account_id == principal.id
    return delivery.main_account_id == principal.id


async def get_webhook(ctx: ServiceContext, principal: Account, event_id: str) -> WebhookDetail:
    """One of the principal's deliveries with its attempts; ``NotFound`` for anything
    else, including another account's."""
    async with ctx.db.read() as conn:
        delivery = await repo.get_delivery(conn, event_id) if is_uuid(event_id) else None
        if delivery is None or not _visible(principal, delivery):
            raise NotFound(messages.RESOURCE_NOT_FOUND)
        return WebhookDetail(delivery, await repo.list_attempts(conn, delivery.id))


# --- The operator's figures -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds from an event to its delivery, over the window's deliveries."""

    count: int
    sum: float
    quantiles: dict[float, float]  # NaN when there is nothing to measure


@dataclass(frozen=True, slots=True)
class DeliveryMetrics:
    counts: OutboxCounts
    oldest_pending_seconds: float  # 0 with nothing pending
    latency: Latency


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ascending ``ordered``; NaN when it is empty."""
    if not ordered:
        return math.nan
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[rank - 1]


async def delivery_metrics(ctx: ServiceContext) -> DeliveryMetrics:
    """The outbox's counts and the last hour's delivery latency, in one read."""
    async with ctx.db.read() as conn:
        now = ctx.clock.now()
        counts = await repo.outbox_counts(conn, now)
        latencies = await repo.recent_latencies(
            conn, since=now - LATENCY_WINDOW, slack=LATENCY_SLACK, limit=LATENCY_SAMPLE
        )
    latencies.sort()
    oldest = counts.oldest_pending
    return DeliveryMetrics(
        counts=counts,
        oldest_pending_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        latency=Latency(
            count=len(latencies),
            sum=math.fsum(latencies),
            quantiles={q: quantile(latencies, q) for q in QUANTILES},
        ),
    )
