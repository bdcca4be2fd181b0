"""The transactional outbox: rows leave in order, and come back after the broker forgets.

Real PostgreSQL and the real embedded broker; no fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka.partitioner import DefaultPartitioner

from stolive.broker import EmbeddedBroker, free_port
from stolive_shared.contracts.codec import decode, header
from stolive_shared.contracts.events import EventPublished, EventSnapshot, EventUpdated
from stolive_shared.contracts.topics import (
    ALL_TOPICS,
    EVENTS,
    RELAY_PROBES,
    RELAY_SCHEMAS,
    probe_partition,
)
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging import outbox
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.messaging.relay import OutboxRelay
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.settings import KafkaSettings
from tests.support import embedded_kafka, eventually, read_topic

SCHEMA = "relaytest"


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [])
    pool = await create_pool(database_url, SCHEMA)
    yield pool
    await pool.close()


def messages_for_one_event(count: int) -> list[EventPublished | EventUpdated]:
    event_id = uuid.uuid4()
    starts = datetime.now(UTC) + timedelta(days=3)

    def snapshot(revision: int) -> EventSnapshot:
        return EventSnapshot(
            event_id=event_id, revision=revision, kind="webinar", status="published",
            title=f"revision {revision}", starts_at=starts, ends_at=starts + timedelta(hours=1),
        )  # fmt: skip

    first: list[EventPublished | EventUpdated] = [EventPublished.create(event=snapshot(2))]
    return first + [EventUpdated.create(event=snapshot(r)) for r in range(3, count + 2)]


async def write(pool: asyncpg.Pool, messages: list[EventPublished | EventUpdated]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue_many(conn, list(messages), schema=SCHEMA)


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def relay_for(database_url: str, pool: asyncpg.Pool, kafka: KafkaSettings) -> OutboxRelay:
    return OutboxRelay(
        database_url=database_url, pool=pool, schema=SCHEMA, kafka=kafka, probe_interval_s=0.5
    )


async def revisions_on_kafka(kafka: KafkaSettings, event_id: uuid.UUID) -> list[int]:
    records = await read_topic(kafka, EVENTS.name, EVENTS.partitions)
    ours = [decode(r.value) for r in records if r.key == str(event_id).encode()]
    return [m.event.revision for m in ours]  # type: ignore[attr-defined]


async def test_rows_are_published_in_order_with_their_headers(
    database_url: str, pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    messages = messages_for_one_event(20)
    event_id = messages[0].event.event_id
    await write(pool, messages)
    async with running(relay_for(database_url, pool, kafka)) as relay:
        await eventually(lambda: relay.stats.published >= 20, what="20 messages published")
    assert await revisions_on_kafka(kafka, event_id) == list(range(2, 22))
    records = await read_topic(kafka, EVENTS.name, EVENTS.partitions)
    first = next(r for r in records if r.key == str(event_id).encode())
    assert header(first.headers, "type") == "event.published"
    assert header(first.headers, "message_id") == str(messages[0].message_id)
    async with pool.acquire() as conn:
        unpublished = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert unpublished == 0


async def test_only_one_relay_leads_a_schema(
    database_url: str, pool: asyncpg.Pool, kafka: KafkaSettings
) -> None:
    async with (
        running(relay_for(database_url, pool, kafka)) as first,
        running(relay_for(database_url, pool, kafka)) as second,
    ):
        await eventually(lambda: first.stats.is_leader or second.stats.is_leader, what="a leader")
        await asyncio.sleep(1.5)
        assert [first.stats.is_leader, second.stats.is_leader].count(True) == 1


async def test_the_outbox_is_written_inside_the_changing_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await outbox.enqueue(conn, messages_for_one_event(1)[0], schema=SCHEMA)


async def test_a_broker_that_lost_its_data_gets_every_retained_row_again(
    database_url: str, pool: asyncpg.Pool, figures: Callable[[str], None]
) -> None:
    broker = EmbeddedBroker(free_port())
    await broker.start()
    kafka = embedded_kafka(broker.bootstrap_servers)
    await ensure_topics(kafka, ALL_TOPICS)
    before, after = messages_for_one_event(5), messages_for_one_event(1)
    try:
        async with running(relay_for(database_url, pool, kafka)) as relay:
            await write(pool, before)
            await eventually(lambda: relay.stats.published >= 5, what="first 5 published")
            broker.kill()
            await broker.start()  # empty: every topic, record and offset is gone
            await ensure_topics(kafka, ALL_TOPICS)
            await write(pool, after)
            await eventually(lambda: relay.stats.republish_rounds >= 1, what="a republish round")
            await eventually(
                lambda: revisions_on_kafka(kafka, before[0].event.event_id),
                timeout_s=20,
                what="the lost messages back on the broker",
            )
        figures(
            f"broker data loss: {relay.stats.republish_rounds} republish round(s), "
            f"{relay.stats.published} publications in all"
        )
        assert await revisions_on_kafka(kafka, before[0].event.event_id) == [2, 3, 4, 5, 6]
        # The row that revealed the loss went to the new broker and is republished once more,
        # in order behind the older rows: at least once, and consumers dedupe by message id.
        assert set(await revisions_on_kafka(kafka, after[0].event.event_id)) == {2}
    finally:
        await broker.stop()


async def test_other_relays_probing_after_a_loss_do_not_hide_it_from_an_idle_relay(
    database_url: str, pool: asyncpg.Pool
) -> None:
    """An idle relay learns of a loss only from its probe. After the restart the other relays
    probe too, and sooner: this one's probe offsets must still start again from 0."""
    broker = EmbeddedBroker(free_port())
    await broker.start()
    kafka = embedded_kafka(broker.bootstrap_servers)
    await ensure_topics(kafka, ALL_TOPICS)
    relay = OutboxRelay(
        database_url=database_url, pool=pool, schema=SCHEMA, kafka=kafka, probe_interval_s=2.0
    )
    try:
        async with running(relay):
            await eventually(lambda: relay.stats.is_leader, what="the relay leads")
            await asyncio.sleep(4.5)  # a few probes of its own
            rounds = relay.stats.republish_rounds
            broker.kill()
            await broker.start()
            await ensure_topics(kafka, ALL_TOPICS)
            producer = create_producer(kafka)
            await producer.start()
            try:
                for _ in range(10):  # the services' relays probe first, several times each
                    for name in RELAY_SCHEMAS:
                        await producer.send_and_wait(
                            RELAY_PROBES.name, value=name.encode(), key=name.encode(),
                            partition=probe_partition(name),
                        )  # fmt: skip
            finally:
                await producer.stop()
            await eventually(
                lambda: relay.stats.republish_rounds > rounds,
                timeout_s=15,
                what="the idle relay to notice the loss from its own probe",
            )
    finally:
        await broker.stop()


def partition_of(event_id: uuid.UUID) -> int:
    partitions = list(range(EVENTS.partitions))
    return int(DefaultPartitioner()(str(event_id).encode(), partitions, partitions))


async def test_a_second_loss_right_after_the_first_is_noticed_too(
    database_url: str, pool: asyncpg.Pool
) -> None:
    """Noticing a loss, the relay forgets the offsets it knew: they belong to the lost log.
    If the broker loses its data again before the next regular probe, only an offset seen on
    the new log can reveal it, so the relay probes at once after a loss. Here the message
    that follows the second loss goes to a partition the relay has not written to since."""
    async with pool.acquire() as conn:  # rows of the tests before would be republished too
        await conn.execute("TRUNCATE outbox, outbox_relay_offsets")
    broker = EmbeddedBroker(free_port())
    await broker.start()
    kafka = embedded_kafka(broker.bootstrap_servers)
    await ensure_topics(kafka, ALL_TOPICS)
    first = messages_for_one_event(3)
    while True:
        later = messages_for_one_event(1)
        if partition_of(later[0].event.event_id) != partition_of(first[0].event.event_id):
            break
    relay = OutboxRelay(
        database_url=database_url, pool=pool, schema=SCHEMA, kafka=kafka, probe_interval_s=4.0
    )

    async def lose_everything() -> None:
        broker.kill()
        await broker.start()
        await ensure_topics(kafka, ALL_TOPICS)

    try:
        async with running(relay):
            await write(pool, first[:2])
            await eventually(lambda: relay.stats.published >= 2, what="2 published")
            await lose_everything()
            published = relay.stats.published
            await write(pool, first[2:])  # reveals the first loss
            await eventually(lambda: relay.stats.republish_rounds == 1, what="the first loss")
            await eventually(
                lambda: relay.stats.published >= published + 4, what="the lost rows sent again"
            )
            await lose_everything()  # well before the next regular probe
            await write(pool, later)
            await eventually(
                lambda: relay.stats.republish_rounds == 2,
                timeout_s=15,
                what="the relay to notice the second loss",
            )
            await eventually(
                lambda: revisions_on_kafka(kafka, first[0].event.event_id),
                timeout_s=20,
                what="the event's messages back on the broker",
            )
        assert await revisions_on_kafka(kafka, first[0].event.event_id) == [2, 3, 4]
    finally:
        await broker.stop()
