"""Observability over the real parts: one trace from a sign-up to its email, and the series
every ``/metrics`` must show, scraped from the running apps and the Faust worker.

The registrations app answers the sign-up in this process (ASGI); its outbox relay publishes
to the real broker; the notifications consumer queues the email in PostgreSQL; the email
sender, a loop of its own, sends it to a real SMTP server (aiosmtpd). The queued email row
carries the consumer span's ``traceparent``, so the SMTP span continues the same trace.
Spans are gathered with OpenTelemetry's in-memory exporter. The metrics are read the way
Prometheus reads them: GET ``/metrics`` on each app, and on the worker's own metrics port.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from sto_analytics.bootstrap import DEFINITION as ANALYTICS
from sto_analytics.config import AnalyticsSettings
from sto_notifications.bootstrap import DEFINITION as NOTIFICATIONS
from sto_notifications.config import NotificationsSettings
from sto_notifications.consumers import create_consumers
from sto_notifications.service import EmailSender
from sto_registrations.bootstrap import DEFINITION as REGISTRATIONS
from sto_registrations.config import RegistrationsSettings
from stolive.broker import free_port
from stolive_shared.contracts.codec import encode
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.topics import REGISTRATIONS as REGISTRATIONS_TOPIC
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.messaging.relay import OutboxRelay
from stolive_shared.settings import KafkaSettings
from stolive_shared.telemetry import setup_telemetry
from tests.support import SmtpSink, eventually, form_token

EXPORTER = InMemorySpanExporter()
ROOT = Path(__file__).resolve().parents[2]
SECRET = "trace-test-link-secret"


@dataclass
class Platform:
    client: httpx.AsyncClient
    notifications: httpx.AsyncClient
    registrations: Any  # RegistrationsService
    sink: SmtpSink

    async def sign_up(self, event_id: uuid.UUID, email: str) -> None:
        answer = await self.client.post(
            f"/api/events/{event_id}/registrations",
            json={
                "name": "Anna de Vries",
                "email": email,
                "organisation": "Wellant College",
                "role": "docent",
                "privacy_consent": True,
                "form_token": await form_token(self.client, "", event_id),
            },
        )
        assert answer.status_code == 202, answer.text

    async def event(self) -> uuid.UUID:
        starts = datetime.now(UTC) + timedelta(days=12)
        event = EventSnapshot(
            event_id=uuid.uuid4(),
            revision=1,
            kind="webinar",
            status="published",
            title="STO LIVE #31: techniek in de onderbouw",
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            capacity=40,
            waitlist_enabled=True,
        )
        async with self.registrations.store.transaction() as registrations:
            await self.registrations.apply_event(registrations, event)
        return event.event_id


@pytest.fixture(scope="module")
async def platform(
    database_url: str, kafka: KafkaSettings, smtp: tuple[SmtpSink, int]
) -> AsyncIterator[Platform]:
    setup_telemetry("trace-to-email-test", extra_processors=[SimpleSpanProcessor(EXPORTER)])
    await apply_migrations(database_url, "registrations", [REGISTRATIONS.migrations])
    await apply_migrations(database_url, "notifications", [NOTIFICATIONS.migrations])
    registrations_settings = RegistrationsSettings(
        database_url=database_url,
        link_secret=SecretStr(SECRET),
        public_base_url="http://sto.test",
        events_api_url="http://127.0.0.1:9",  # nobody there: no regions needed
        kafka=kafka,
        signup_form_token_min_age_s=0,
    )
    notifications_settings = NotificationsSettings(
        database_url=database_url,
        smtp_port=smtp[1],
        smtp_connections=1,
        public_base_url="http://sto.test",
        link_secret=SecretStr(SECRET),
        events_api_url="http://127.0.0.1:9",
        kafka=kafka,
    )
    registrations_pool = await create_pool(database_url, "registrations", max_size=4)
    notifications_pool = await create_pool(database_url, "notifications", max_size=4)
    app = REGISTRATIONS.app(REGISTRATIONS.runtime(registrations_settings, registrations_pool))
    notifications = NOTIFICATIONS.bootstrap(
        NOTIFICATIONS.runtime(notifications_settings, notifications_pool)
    )
    notifications_app = NOTIFICATIONS.create_app(notifications)
    consumer = next(c for c in create_consumers(notifications) if "registrations" in c.name)
    loops = [
        OutboxRelay(
            database_url=database_url,
            pool=registrations_pool,
            schema="registrations",
            kafka=kafka,
        ).run(),
        consumer.run(),
        EmailSender(notifications_pool, notifications_settings).run(),
    ]
    # Each loop starts outside any span, as it does in its own process.
    tasks = [asyncio.create_task(loop, context=contextvars.Context()) for loop in loops]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://sto.test") as client,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=notifications_app), base_url="http://sto.test"
            ) as notifications_client,
        ):
            yield Platform(client, notifications_client, app.state.registrations, smtp[0])
    finally:
        for task in tasks:
            task.cancel()
        # Bounded: a loop that does not stop must not hold up the rest of the suite (their
        # stops are tested with real processes and SIGTERM in tests/reliability).
        stopped, running = await asyncio.wait(tasks, timeout=60)
        assert not running, f"loops still running 60 s after cancel: {running}"
        for task in stopped:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.state.registrations.close()
        await registrations_pool.close()
        await notifications_pool.close()


def spans_of(trace_id: int) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == trace_id]


def describe(spans: list[ReadableSpan]) -> str:
    ordered = sorted(spans, key=lambda s: s.start_time or 0)
    return " -> ".join(f"{s.name} ({s.kind.name.lower()})" for s in ordered)


@dataclass(frozen=True)
class SignedUp:
    """The spans of one sign-up, gathered once its confirmation email was accepted."""

    http: ReadableSpan
    batch: ReadableSpan
    send: ReadableSpan
    subject: str


@pytest.fixture(scope="module")
async def signed_up(platform: Platform) -> SignedUp:
    event_id = await platform.event()
    email = f"docent-{uuid.uuid4().hex[:8]}@school.nl"
    EXPORTER.clear()
    await platform.sign_up(event_id, email)
    [received] = await eventually(
        lambda: platform.sink.to(email), timeout_s=30, what="the confirmation email"
    )
    finished = EXPORTER.get_finished_spans()
    [http] = [
        s for s in finished if s.kind == trace.SpanKind.SERVER and s.name.endswith("/registrations")
    ]
    [batch] = [s for s in finished if s.name == "sign-up batch"]
    # The broker is the session's: the consumer may also meet registrations other modules
    # left on the topic, and send their e-mails too. This sign-up's send is in its trace.
    [send] = await eventually(
        lambda: [
            s
            for s in EXPORTER.get_finished_spans()
            if s.name.startswith("smtp send") and trace_id_of(s) == trace_id_of(http)
        ],
        what="the SMTP span of this sign-up",
    )
    return SignedUp(http=http, batch=batch, send=send, subject=received.subject)


def trace_id_of(span: ReadableSpan) -> int:
    assert span.context is not None
    trace_id: int = span.context.trace_id
    return trace_id


async def test_one_trace_id_runs_from_the_http_sign_up_through_kafka_to_the_email(
    signed_up: SignedUp, figures: Callable[[str], None]
) -> None:
    assert signed_up.subject.startswith("Je bent aangemeld: ")
    # The sign-up's message carries the request's trace, whichever batch committed it: the
    # outbox row, the relay, Kafka, the consumer, the email row and the sender loop all
    # continue it up to the SMTP server.
    in_trace = spans_of(trace_id_of(signed_up.http))
    figures(f"one trace from sign-up to email: {describe(in_trace)}")
    kinds = {(s.name, s.kind) for s in in_trace}
    assert (signed_up.http.name, trace.SpanKind.SERVER) in kinds
    assert (f"publish {REGISTRATIONS_TOPIC.name}", trace.SpanKind.PRODUCER) in kinds
    assert (f"consume {REGISTRATIONS_TOPIC.name}", trace.SpanKind.CONSUMER) in kinds
    assert ("smtp send registration_confirmed", trace.SpanKind.CLIENT) in kinds
    assert trace_id_of(signed_up.send) == trace_id_of(signed_up.http)
    assert signed_up.send.status.is_ok


async def test_the_sign_up_batch_links_to_every_request_it_committed(
    signed_up: SignedUp,
) -> None:
    assert signed_up.http.context is not None
    linked = {link.context.span_id for link in signed_up.batch.links}
    assert signed_up.http.context.span_id in linked


# -- /metrics ---------------------------------------------------------------------------------


def series(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 for a series not (yet) on the page."""
    return page.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return series(answer.text)


SIGN_UP = {
    "service": "registrations",
    "method": "POST",
    "route": "/api/events/{event_id}/registrations",
    "status": "202",
}


async def test_metrics_show_latency_backlog_lag_and_emails_sent_and_failed(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    event_id = await platform.event()
    welcome, bounce = (f"{who}-{uuid.uuid4().hex[:8]}@school.nl" for who in ("docent", "weg"))
    platform.sink.refuse[bounce] = "550 5.1.1 Mailbox does not exist"
    registrations_before = await scrape(platform.client)
    notifications_before = await scrape(platform.notifications)

    for email in (welcome, bounce):
        await platform.sign_up(event_id, email)
    await eventually(lambda: platform.sink.to(welcome), what="the confirmation email")

    async def settled() -> Any:
        page = await scrape(platform.notifications)
        sent = value(page, "stolive_emails_sent_total", kind="transactional")
        failed = value(page, "stolive_emails_failed_total", kind="transactional", permanent="true")
        was_sent = value(notifications_before, "stolive_emails_sent_total", kind="transactional")
        was_failed = value(
            notifications_before,
            "stolive_emails_failed_total",
            kind="transactional",
            permanent="true",
        )
        return page if (sent - was_sent, failed - was_failed) == (1, 1) else None

    notifications_page = await eventually(settled, what="one email sent and one failed")
    registrations_page = await scrape(platform.client)

    latency = value(
        registrations_page, "stolive_http_request_duration_seconds_count", **SIGN_UP
    ) - value(registrations_before, "stolive_http_request_duration_seconds_count", **SIGN_UP)
    assert latency == 2, "one latency observation per sign-up, labelled by route template"
    assert value(registrations_page, "stolive_http_request_duration_seconds_sum", **SIGN_UP) > 0
    # Both sign-ups were published (the relay runs): nothing left in the outbox.
    assert ("stolive_outbox_backlog", frozenset({("schema", "registrations")})) in (
        registrations_page
    )
    assert value(registrations_page, "stolive_outbox_backlog", schema="registrations") == 0
    # The notifications consumer reports its lag per partition it read, caught up at 0.
    lags = {
        dict(labels)["partition"]: v
        for (name, labels), v in notifications_page.items()
        if name == "stolive_consumer_lag"
        and dict(labels)["consumer"] == "notifications.registrations"
    }
    assert lags, "a lag series for the partitions the consumer read"
    assert all(lag == 0 for lag in lags.values()), lags
    figures(
        "metrics after 2 sign-ups (1 bounce): latency observations +2, outbox backlog 0, "
        f"consumer lag {sorted(lags.values())}, emails sent +1, failed (permanent) +1"
    )


# -- the analytics API and the Faust worker -------------------------------------------------


@dataclass
class FaustWorker:
    process: subprocess.Popen[bytes]
    log: Path
    metrics_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
async def analytics_api(
    database_url: str, kafka: KafkaSettings
) -> AsyncIterator[httpx.AsyncClient]:
    await apply_migrations(database_url, "analytics", [ANALYTICS.migrations])
    settings = AnalyticsSettings(
        database_url=database_url,
        kafka=kafka,
        link_secret=SecretStr(SECRET),
        events_api_url="http://127.0.0.1:9",
    )
    pool = await create_pool(database_url, "analytics", max_size=2)
    app = ANALYTICS.app(ANALYTICS.runtime(settings, pool))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sto.test"
        ) as client:
            yield client
    finally:
        await pool.close()


@pytest.fixture
def faust_worker(database_url: str, kafka: KafkaSettings, tmp_path: Path) -> Iterator[FaustWorker]:
    port = free_port()
    name = f"analytics-metrics-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "DATABASE_URL": database_url,
        "WORKER_NAME": name,
        "FAUST_DATA_DIR": str(tmp_path / "faust"),
        "LINK_SECRET": SECRET,
        "METRICS_PORT": str(port),
        "METRICS_INTERVAL_S": "0.5",
        "EXPIRY_INTERVAL_S": "0.5",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sto_analytics", "worker"],
            env=env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    worker = FaustWorker(process, log, f"http://127.0.0.1:{port}/metrics")
    yield worker
    worker.stop()


async def test_live_viewers_show_on_the_worker_port_and_the_analytics_api(
    kafka: KafkaSettings,
    analytics_api: httpx.AsyncClient,
    faust_worker: FaustWorker,
    figures: Callable[[str], None],
) -> None:
    event_id = uuid.uuid4()
    viewers = [f"v_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    producer = create_producer(kafka)
    await producer.start()

    async def join_and_count() -> Any:
        """Beacons again each round: the first may arrive before the worker has its partitions."""
        assert faust_worker.process.poll() is None, faust_worker.log.read_text()[-3000:]
        now = datetime.now(UTC)
        for viewer_id in viewers:
            message = ViewerBeacon.create(
                event_id=event_id,
                viewer_id=viewer_id,
                action="heartbeat",
                mode="live",
                client_ts=now,
                received_at=now,
            )
            payload, headers = encode(message)
            await producer.send(
                message.TOPIC, payload, key=message.partition_key().encode(), headers=headers
            )
        await producer.flush()
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                answer = await client.get(faust_worker.metrics_url)
        except httpx.TransportError:
            return None  # not serving yet
        page = series(answer.text)
        api_page = await scrape(analytics_api)
        worker_count = sum(
            v for (name, _), v in page.items() if name == "stolive_worker_live_viewers"
        )
        if worker_count >= len(viewers) and value(api_page, "stolive_live_viewers") >= len(viewers):
            return page, api_page
        return None

    try:
        worker_page, api_page = await eventually(
            join_and_count, timeout_s=90, interval_s=1, what="3 live viewers on both pages"
        )
    finally:
        await producer.stop()
    lag_partitions = [
        dict(labels)["partition"]
        for (name, labels) in worker_page
        if name == "stolive_consumer_lag"
    ]
    assert any(p.startswith(VIEWER_ACTIVITY.name + "/") for p in lag_partitions), lag_partitions
    on_worker = sum(v for (n, _), v in worker_page.items() if n == "stolive_worker_live_viewers")
    figures(
        f"live viewers: worker port {on_worker:.0f}, "
        f"analytics /metrics {value(api_page, 'stolive_live_viewers'):.0f}; "
        f"worker lag series for {len(lag_partitions)} partitions"
    )
