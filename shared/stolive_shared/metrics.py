r"""Prometheus metrics every service exposes at ``/metrics``.

Shared series: request latency, outbox backlog, age and publications, consumer lag and
outcomes, open dead letters, e-mails stuck in ``sending``; the alert rules in
``deploy/prometheus/alerts.yml`` watch them. The series read from the database at scrape time
come from probes (``outbox_probe``, ``StuckSending``, ``messaging.dead_letters.
DeadLetterMonitor``): ``MetricsProbe``\ s a runtime runs before each scrape.
Service series are declared here too, so one module names every series the guide documents:
emails sent and failed (notifications, counted where SMTP answered) and live viewers
(analytics: the API reads the total from its read model at scrape time; each Faust worker
serves the count of the events it owns on its own metrics port). Labels are bounded: routes
are templates (``/api/events/{event_id}``), never raw paths.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REQUEST_SECONDS = Histogram(
    "stolive_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
OUTBOX_BACKLOG = Gauge("stolive_outbox_backlog", "Outbox rows not yet published", ["schema"])
OUTBOX_OLDEST_UNPUBLISHED = Gauge(
    "stolive_outbox_oldest_unpublished_seconds",
    "Age of the oldest outbox row not yet published (0 when none waits)",
    ["schema"],
)
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
DEAD_LETTERS_OPEN = Gauge(
    "stolive_dead_letters_open",
    "Dead letters on a dead-letter topic nobody replayed or discarded yet",
    ["topic"],
)
EMAILS_SENDING = Gauge(
    "stolive_emails_sending",
    "Notification rows in 'sending' now (emails, mailing_recipients)",
    ["table"],
)
EMAILS_STUCK_SENDING = Gauge(
    "stolive_emails_stuck_sending",
    "Notification rows seen in 'sending' for longer than a send can take",
    ["table"],
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
# Sets gauges from the database at scrape time, on a connection of the service's pool.
MetricsProbe = Callable[[asyncpg.Connection], Awaitable[None]]


def outbox_probe(schema: str) -> MetricsProbe:
    """The backlog of the service's outbox, and how long its oldest row has waited: a relay
    that does not publish shows as an age that keeps growing."""

    async def probe(conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
            " FROM outbox WHERE published_at IS NULL"
        )
        assert row is not None
        OUTBOX_BACKLOG.labels(schema).set(row[0])
        OUTBOX_OLDEST_UNPUBLISHED.labels(schema).set(float(row[1]))

    return probe


class StuckSending:
    """E-mails that stay in ``sending`` (``notifications.emails`` and ``mailing_recipients``).

    A row is in ``sending`` for the seconds an SMTP send takes; one whose sender died stays
    there until someone requeues it. The tables have no claim time, so the probe remembers
    when it first saw each row in ``sending`` and counts those still there after
    ``stuck_after_s`` (5 minutes; a send gives up after 15 s). Run it in one process that
    Prometheus scrapes regularly; it reads at most every ``min_interval_s``.
    """

    TABLES = ("emails", "mailing_recipients")

    def __init__(self, stuck_after_s: float = 300.0, min_interval_s: float = 10.0) -> None:
        self._stuck_after_s = stuck_after_s
        self._min_interval_s = min_interval_s
        self._next_look = 0.0
        self._first_seen: dict[str, dict[object, float]] = {t: {} for t in self.TABLES}

    async def __call__(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + self._min_interval_s
        if await conn.fetchval("SELECT to_regclass('notifications.emails')") is None:
            return  # not this database's service
        for table in self.TABLES:
            rows = await conn.fetch(
                f"SELECT id FROM notifications.{table} WHERE status = 'sending'"
            )
            before = self._first_seen[table]
            seen = {row[0]: before.get(row[0], now) for row in rows}
            self._first_seen[table] = seen
            stuck = sum(1 for since in seen.values() if now - since >= self._stuck_after_s)
            EMAILS_SENDING.labels(table).set(len(seen))
            EMAILS_STUCK_SENDING.labels(table).set(stuck)


def metrics_router(refresh: Refresh | None = None) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        if refresh is not None:
            await refresh()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
