"""The consumer loop: effects once per message id, poison to the dead-letter topic."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from stolive_shared.contracts.codec import encode, header
from stolive_shared.contracts.events import EventPublished, EventSnapshot, EventUpdated
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging.consumer import Delivery, MessageConsumer
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.settings import KafkaSettings
from tests.support import eventually, read_topic

SCHEMA = "consumertest"


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [])
    pool = await create_pool(database_url, SCHEMA)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (message_id uuid, event_id uuid, title text)")
    yield pool
    await pool.close()


def published(title: str = "STO LIVE") -> EventPublished:
    starts = datetime.now(UTC) + timedelta(days=2)
    return EventPublished.create(
        event=EventSnapshot(
            event_id=uuid.uuid4(),
            revision=2,
            kind="webinar",
            status="published",
            title=title,
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
        )
    )


async def record_effect(conn: asyncpg.Connection, message: Any, _delivery: Delivery) -> None:
    if message.event.title == "explodes":
        raise ValueError("this handler cannot cope with explosions")
    await conn.execute(
        "INSERT INTO effects VALUES ($1, $2, $3)",
        message.message_id,
        message.event.event_id,
        message.event.title,
    )


@contextlib.asynccontextmanager
async def consuming(pool: asyncpg.Pool, kafka: KafkaSettings) -> AsyncIterator[MessageConsumer]:
    consumer = MessageConsumer(
        name=f"consumer-test-{uuid.uuid4().hex[:6]}",
        topics=[EVENTS.name],
        handlers={EventPublished: record_effect},
        pool=pool,
        kafka=kafka,
        max_attempts=2,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def produce(
    kafka: KafkaSettings, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> None:
    producer = create_producer(kafka)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(EVENTS.name, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def effects_of(pool: asyncpg.Pool, event_id: uuid.UUID) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM effects WHERE event_id = $1", event_id
        )
        return count


async def dead_letters(kafka: KafkaSettings, consumer: str) -> list[Any]:
    records = await read_topic(kafka, EVENTS.dlq.name, 1)
    return [r for r in records if header(r.headers, "dlq.consumer") == consumer]


async def test_a_redelivered_message_has_its_effect_once(
    pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    message = published()
    value, headers = encode(message)
    key = message.partition_key().encode()
    async with consuming(pool, kafka) as consumer:
        await produce(kafka, [(key, value, headers), (key, value, headers), (key, value, headers)])
        await eventually(lambda: consumer.stats.redeliveries >= 2, what="two redeliveries seen")
    assert await effects_of(pool, message.event.event_id) == 1


async def test_poison_goes_to_the_dead_letter_topic_and_the_consumer_keeps_going(
    pool: asyncpg.Pool, kafka: KafkaSettings, figures: Callable[[str], None]
) -> None:
    after = published("after the poison")
    failing = published("explodes")
    poison: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = [
        (b"k", b"{not json", []),
        (b"k", b"\xff\xfe", []),
        (b"k", b'{"type": "event.exploded", "version": 1}', []),
        (b"k", b'{"type": "event.published", "version": 7}', []),
        (failing.partition_key().encode(), *encode(failing)),
        (after.partition_key().encode(), *encode(after)),
    ]
    async with consuming(pool, kafka) as consumer:
        await produce(kafka, poison)
        await eventually(
            lambda: effects_of(pool, after.event.event_id), what="the valid message handled"
        )
        letters = await eventually(
            lambda: _at_least(dead_letters(kafka, consumer.name), 5), what="5 dead letters"
        )
    errors = sorted(header(r.headers, "dlq.error_type") or "" for r in letters)
    figures(f"poison: {len(poison) - 1} bad records, {len(letters)} dead-lettered, 1 valid handled")
    assert errors == ["UndecodableMessage", "UndecodableMessage", "UnknownMessageType",
                      "UnknownMessageType", "ValueError"]  # fmt: skip
    assert all(header(r.headers, "dlq.source_topic") == EVENTS.name for r in letters)
    assert all(header(r.headers, "dlq.error") for r in letters)
    assert await effects_of(pool, failing.event.event_id) == 0


async def test_message_types_without_a_handler_are_skipped(
    pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    update = EventUpdated.create(event=published().event)
    async with consuming(pool, kafka) as consumer:
        await produce(kafka, [(update.partition_key().encode(), *encode(update))])
        await eventually(lambda: consumer.stats.skipped >= 1, what="a skipped message")
    async with pool.acquire() as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM processed_messages WHERE message_id = $1", update.message_id
        )
    assert recorded == 0


async def _at_least(records: Any, count: int) -> list[Any] | None:
    found = await records
    return found if len(found) >= count else None
