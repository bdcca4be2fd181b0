"""One trace runs from an HTTP request through the outbox, the relay and Kafka to a consumer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stolive_shared.contracts.events import EventPublished, EventSnapshot
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging import outbox
from stolive_shared.messaging.consumer import Delivery, MessageConsumer
from stolive_shared.messaging.relay import OutboxRelay
from stolive_shared.settings import KafkaSettings
from stolive_shared.telemetry import setup_telemetry
from tests.support import eventually

SCHEMA = "tracingtest"
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    setup_telemetry("tracing-test", extra_processors=[SimpleSpanProcessor(EXPORTER)])
    await apply_migrations(database_url, SCHEMA, [])
    pool = await create_pool(database_url, SCHEMA)
    yield pool
    await pool.close()


async def test_the_consumer_continues_the_request_trace(
    database_url: str, pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    starts = datetime.now(UTC) + timedelta(days=1)
    message = EventPublished.create(
        event=EventSnapshot(
            event_id=uuid.uuid4(),
            revision=2,
            kind="webinar",
            status="published",
            title="traced",
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
        )
    )
    handled: list[str] = []

    async def handler(_conn: asyncpg.Connection, seen: Any, _delivery: Delivery) -> None:
        if seen.message_id == message.message_id:
            span = trace.get_current_span().get_span_context()
            handled.append(f"{span.trace_id:032x}")

    with trace.get_tracer("test").start_as_current_span(
        "POST /api/events/{event_id}/publish", kind=trace.SpanKind.SERVER
    ) as request_span:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, message, schema=SCHEMA)
    trace_id = f"{request_span.get_span_context().trace_id:032x}"

    relay = OutboxRelay(database_url=database_url, pool=pool, schema=SCHEMA, kafka=kafka)
    consumer = MessageConsumer(
        name=f"tracing-{uuid.uuid4().hex[:6]}",
        topics=[EVENTS.name],
        handlers={EventPublished: handler},
        pool=pool,
        kafka=kafka,
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        await eventually(lambda: handled, what="the traced message handled")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert handled == [trace_id]
    spans = [s for s in EXPORTER.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
    kinds = {(s.name, s.kind) for s in spans}
    assert ("POST /api/events/{event_id}/publish", trace.SpanKind.SERVER) in kinds
    assert (f"publish {EVENTS.name}", trace.SpanKind.PRODUCER) in kinds
    assert (f"consume {EVENTS.name}", trace.SpanKind.CONSUMER) in kinds
