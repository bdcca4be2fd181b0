"""What an unattended platform shows at ``/metrics``, read as Prometheus reads it: consumer lag
per group and partition, the age of the oldest unpublished outbox row, e-mails stuck in
``sending``, and open dead letters per topic.

A runtime with the shared probes serves ``/metrics`` (``metrics_app``) over real PostgreSQL
and the real embedded broker; the rows and records are made the way the platform makes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sto_notifications.bootstrap import DEFINITION as NOTIFICATIONS
from stolive_shared.contracts.events import EventPublished
from stolive_shared.contracts.topics import BUSINESS_TOPICS, EVENTS, RELAY_SCHEMAS
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging import outbox
from stolive_shared.messaging.consumer import Delivery, MessageConsumer
from stolive_shared.messaging.dead_letters import DeadLetterMonitor, DeadLetters, ensure_schema
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.metrics import StuckSending, outbox_probe
from stolive_shared.runtime import Runtime, metrics_app
from stolive_shared.settings import KafkaSettings, ServiceSettings
from tests.integration.test_consumer_loop import published
from tests.support import eventually, produce_messages

SCHEMA = "opsmetrics"
RELAY_SCHEMAS_UPPER = [schema.upper() for schema in RELAY_SCHEMAS]
DLQ_SOURCES = [topic.name for topic in BUSINESS_TOPICS]
Page = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [])
    await apply_migrations(database_url, "notifications", [NOTIFICATIONS.migrations])
    await ensure_schema(database_url)
    pool = await create_pool(database_url, SCHEMA)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def scrape(pool: asyncpg.Pool, kafka: KafkaSettings) -> AsyncIterator[Callable[[], Any]]:
    runtime = Runtime(
        settings=ServiceSettings(db_schema=SCHEMA, kafka=kafka),
        pool=pool,
        metrics_probes=[
            outbox_probe(SCHEMA),
            StuckSending(stuck_after_s=1.0, min_interval_s=0),
            DeadLetterMonitor(kafka, min_interval_s=0),
        ],
    )
    transport = httpx.ASGITransport(app=metrics_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:

        async def page() -> Page:
            answer = await client.get("/metrics")
            assert answer.status_code == 200
            return {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(answer.text)
                for sample in family.samples
            }

        yield page


def value(page: Page, name: str, **labels: str) -> float | None:
    return page.get((name, frozenset(labels.items())))


async def test_the_oldest_unpublished_outbox_row_shows_its_age(
    pool: asyncpg.Pool, scrape: Callable[[], Any]
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, published(), schema=SCHEMA)
        await conn.execute("UPDATE outbox SET created_at = now() - interval '10 minutes'")
    page = await scrape()
    assert value(page, "stolive_outbox_backlog", schema=SCHEMA) == 1
    age = value(page, "stolive_outbox_oldest_unpublished_seconds", schema=SCHEMA)
    assert age is not None
    assert 600 <= age < 700
    async with pool.acquire() as conn:
        await conn.execute("UPDATE outbox SET published_at = now()")
    page = await scrape()
    assert value(page, "stolive_outbox_oldest_unpublished_seconds", schema=SCHEMA) == 0


async def test_an_email_left_in_sending_is_counted_as_stuck(
    pool: asyncpg.Pool, scrape: Callable[[], Any], figures: Callable[[str], None]
) -> None:
    email_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO notifications.emails (id, dedup_key, kind, recipient, subject,
                   body_text, body_html, status, attempts, claimed_by)
               VALUES ($1, $2, 'registration_confirmed', $3, 'Je bent aangemeld', '', '',
                       'sending', 1, 4242)""",
            email_id, f"test:{email_id}", f"{email_id}@example.org",
        )  # fmt: skip
    first = await scrape()
    assert value(first, "stolive_emails_sending", table="emails") == 1
    assert value(first, "stolive_emails_stuck_sending", table="emails") == 0
    stuck = await eventually(
        lambda: _stuck(scrape), timeout_s=20, what="the row counted as stuck after 1 s"
    )
    assert value(stuck, "stolive_emails_stuck_sending", table="mailing_recipients") == 0
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE notifications.emails SET status = 'sent' WHERE id = $1", email_id
        )
    after = await scrape()
    assert value(after, "stolive_emails_sending", table="emails") == 0
    assert value(after, "stolive_emails_stuck_sending", table="emails") == 0
    figures("an e-mail left in 'sending': counted as stuck after the threshold, 0 once sent")


async def _stuck(scrape: Callable[[], Any]) -> Page | None:
    page: Page = await scrape()
    return page if value(page, "stolive_emails_stuck_sending", table="emails") == 1 else None


async def test_open_dead_letters_are_counted_per_topic_until_handled(
    pool: asyncpg.Pool, kafka: KafkaSettings, scrape: Callable[[], Any]
) -> None:
    dlq = EVENTS.dlq.name
    before = value(await scrape(), "stolive_dead_letters_open", topic=dlq) or 0
    producer = create_producer(kafka)
    await producer.start()
    try:
        ack = await producer.send_and_wait(
            dlq, value=b"{not json", key=b"k",
            headers=[("dlq.error", b"bad JSON"), ("dlq.error_type", b"UndecodableMessage"),
                     ("dlq.source_topic", EVENTS.name.encode())],
        )  # fmt: skip
    finally:
        await producer.stop()
    page = await scrape()
    assert value(page, "stolive_dead_letters_open", topic=dlq) == before + 1
    await DeadLetters(kafka, pool).discard(f"{dlq}:{ack.partition}:{ack.offset}", by="test")
    page = await scrape()
    assert value(page, "stolive_dead_letters_open", topic=dlq) == before
    assert value(page, "stolive_dead_letters_open", topic="sto.viewer-activity.dlq") is not None


async def test_consumer_lag_is_reported_per_partition_from_the_high_watermark(
    pool: asyncpg.Pool, kafka: KafkaSettings, scrape: Callable[[], Any]
) -> None:
    messages = [published() for _ in range(40)]
    ours = {m.message_id for m in messages}
    seen: list[int] = []

    async def slow(_conn: asyncpg.Connection, message: Any, _delivery: Delivery) -> None:
        if message.message_id in ours:
            seen.append(1)
            await asyncio.sleep(0.05)

    consumer = MessageConsumer(
        name=f"lag-test-{uuid.uuid4().hex[:6]}", topics=[EVENTS.name],
        handlers={EventPublished: slow}, pool=pool, kafka=kafka, max_records=5,
    )  # fmt: skip
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: consumer.stats.assigned, what="partitions assigned")
        await produce_messages(kafka, messages)
        behind = await eventually(
            lambda: _lags(scrape, consumer.name, lambda lags: sum(lags.values()) > 0),
            what="a lag while the consumer works through the backlog",
        )
        caught_up = await eventually(
            lambda: _lags(scrape, consumer.name, lambda lags: len(seen) == 40 and
                          set(lags.values()) == {0}),
            timeout_s=60, what="every partition caught up",
        )  # fmt: skip
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert set(caught_up) == {f"{EVENTS.name}/{p}" for p in range(EVENTS.partitions)}
    assert max(behind.values()) > 0


async def _lags(
    scrape: Callable[[], Any], consumer: str, wanted: Callable[[dict[str, float]], bool]
) -> dict[str, float] | None:
    page: Page = await scrape()
    lags = {
        dict(labels)["partition"]: v
        for (name, labels), v in page.items()
        if name == "stolive_consumer_lag" and dict(labels)["consumer"] == consumer
    }
    return lags if lags and wanted(lags) else None


async def test_stolive_status_names_what_is_down_and_what_is_waiting(
    database_url: str, kafka: KafkaSettings
) -> None:
    nobody = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        **{f"{name}_API_URL": nobody for name in RELAY_SCHEMAS_UPPER},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stolive.ops", "status", "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, errors = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 1, errors.decode()  # the services are not there
    report = json.loads(output)
    components = report["components"]
    assert components["broker"]["ok"]
    assert components["postgresql"]["ok"]
    assert not components["events"]["ok"]
    assert report["backlogs"]["emails_sending"] == {"emails": 0, "mailing_recipients": 0}
    assert all(lag["lag"] >= 0 for lag in report["backlogs"]["consumer_lag"])
    assert set(report["backlogs"]["dead_letters_open"]) <= {f"{t}.dlq" for t in DLQ_SOURCES}
