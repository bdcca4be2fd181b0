"""Prometheus metrics every service exposes at ``/metrics``.

Shared series: request latency, outbox backlog and publications, consumer lag and outcomes.
Service series are declared here too, so one module names every series the guide documents:
emails sent and failed (notifications, counted where SMTP answered) and live viewers
(analytics: the API reads the total from its read model at scrape time; each Faust worker
serves the count of the events it owns on its own metrics port). Labels are bounded: routes
are templates (``/api/events/{event_id}``), never raw paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REQUEST_SECONDS = Histogram(
    "stolive_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
OUTBOX_BACKLOG = Gauge("stolive_outbox_backlog", "Outbox rows not yet published", ["schema"])
OUTBOX_PUBLISHED = Counter(
    "stolive_outbox_published_total", "Outbox rows published to Kafka", ["schema"]
)
OUTBOX_REPUBLISH_ROUNDS = Counter(
    "stolive_outbox_republish_rounds_total",
    "Times the relay found the broker had lost its data and republished",
    ["schema"],
)
CONSUMER_LAG = Gauge(
    "stolive_consumer_lag",
    "Records behind the partition's high watermark",
    ["consumer", "partition"],
)
CONSUMER_MESSAGES = Counter(
    "stolive_consumer_messages_total",
    "Messages a consumer finished with, by outcome",
    ["consumer", "outcome"],
)

RETENTION_REMOVED = Counter(
    "stolive_retention_removed_total",
    "Records whose personal data the retention job removed, by rule",
    ["rule"],
)
EMAILS_SENT = Counter(
    "stolive_emails_sent_total",
    "Emails the SMTP server accepted, by kind (transactional or newsletter)",
    ["kind"],
)
EMAILS_FAILED = Counter(
    "stolive_emails_failed_total",
    "SMTP sends that failed, by kind; permanent=true ones are not tried again",
    ["kind", "permanent"],
)
LIVE_VIEWERS = Gauge(
    "stolive_live_viewers",
    "Viewers watching a live broadcast now, over every live event (analytics read model)",
)
WORKER_LIVE_VIEWERS = Gauge(
    "stolive_worker_live_viewers",
    "Live viewers of the events whose partitions this analytics worker owns",
    ["worker"],
)

EMAIL_KINDS = ("transactional", "newsletter")

Refresh = Callable[[], Awaitable[None]]


def metrics_router(refresh: Refresh | None = None) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        if refresh is not None:
            await refresh()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
