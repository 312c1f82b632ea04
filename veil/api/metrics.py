"""``/metrics``: the operator's figures in Prometheus' text exposition format (0.0.4),
without authentication, like ``/healthz``; keep it off the public interface.

Everything is read from the database on each scrape, so every node answers for the
whole cluster (scrape one). The counters count outbox rows: they stay monotonic as long
as delivered and dead rows are kept.

- ``veil_webhook_deliveries_total{status="delivered"|"dead"}``: events settled;
- ``veil_webhook_retries_total``: attempts beyond an event's first (retries, backup URLs);
- ``veil_webhook_queue_depth``: events pending (waiting, being sent, or retried later);
- ``veil_webhook_queue_due``: of those, events whose next attempt time has come;
- ``veil_webhook_oldest_pending_seconds``: age of the oldest pending event (0 if none);
- ``veil_webhook_delivery_latency_seconds``: a summary of seconds from event to delivery,
  over the events delivered in the last hour (at most the 10,000 last due): quantiles
  0.5, 0.9 and 0.99, with ``_count`` and ``_sum`` of that window, so they are gauges,
  not counters (do not ``rate()`` them);
- ``veil_build_info{version}``: always 1.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil import __version__
from veil.service import webhooks
from veil.service.context import ServiceContext

router = APIRouter(tags=["Operations"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Exposition:
    """Families written one after the other: HELP, TYPE, then the samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            name = f"{name}{{{inner}}}"
        self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(stats: webhooks.DeliveryMetrics) -> str:
    out = _Exposition()
    counts = stats.counts
    out.family(
        "veil_webhook_deliveries_total", "counter", "Webhook events settled, by final status."
    )
    out.sample("veil_webhook_deliveries_total", counts.delivered, status="delivered")
    out.sample("veil_webhook_deliveries_total", counts.dead, status="dead")
    out.family(
        "veil_webhook_retries_total",
        "counter",
        "Webhook attempts beyond an event's first (retries and backup URLs).",
    )
    out.sample("veil_webhook_retries_total", counts.retries)
    out.family("veil_webhook_queue_depth", "gauge", "Webhook events pending delivery.")
    out.sample("veil_webhook_queue_depth", counts.pending)
    out.family(
        "veil_webhook_queue_due", "gauge", "Pending webhook events whose attempt time has come."
    )
    out.sample("veil_webhook_queue_due", counts.due)
    out.family(
        "veil_webhook_oldest_pending_seconds",
        "gauge",
        "Age of the oldest pending webhook event (0 when none).",
    )
    out.sample("veil_webhook_oldest_pending_seconds", stats.oldest_pending_seconds)
    latency = stats.latency
    name = "veil_webhook_delivery_latency_seconds"
    out.family(
        name,
        "summary",
        "Seconds from a webhook event to its delivery, over the last hour's deliveries "
        "(_count and _sum are of that window).",
    )
    for q, value in latency.quantiles.items():
        out.sample(name, value, quantile=f"{q:g}")
    out.sample(f"{name}_sum", latency.sum)
    out.sample(f"{name}_count", latency.count)
    out.family("veil_build_info", "gauge", "Veil's version.")
    out.sample("veil_build_info", 1, version=__version__)
    return out.text()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    stats = await webhooks.delivery_metrics(ctx)
    return Response(render(stats), media_type=CONTENT_TYPE)
