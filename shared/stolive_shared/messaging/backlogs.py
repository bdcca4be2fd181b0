"""What is waiting, read once for ``stolive status``: outbox rows per schema, e-mails in
``sending``, consumer lag per group and partition.

``/metrics`` has the same figures from inside the processes (``metrics``); this module asks
from outside, so an operator sees them with no Prometheus at hand. Lag is the committed offset
against the high watermark a fetch reports (not ListOffsets, which the embedded broker answers
with the newest batch's start).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from stolive_shared.contracts.topics import BUSINESS_TOPICS
from stolive_shared.messaging.kafka import create_admin, create_consumer
from stolive_shared.settings import KafkaSettings


@dataclass(frozen=True)
class OutboxBacklog:
    schema: str
    unpublished: int
    oldest_s: float


async def outbox_backlogs(conn: asyncpg.Connection, schemas: list[str]) -> list[OutboxBacklog]:
    """Unpublished outbox rows and the age of the oldest, per schema that has an outbox."""
    backlogs = []
    for schema in schemas:
        if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.outbox") is None:
            continue
        row = await conn.fetchrow(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
            f' FROM "{schema}".outbox WHERE published_at IS NULL'
        )
        assert row is not None
        backlogs.append(OutboxBacklog(schema, row[0], float(row[1])))
    return backlogs


async def emails_in_sending(conn: asyncpg.Connection) -> dict[str, int]:
    """Notification rows in ``sending`` now, per table (empty without the notifications schema)."""
    if await conn.fetchval("SELECT to_regclass('notifications.emails')") is None:
        return {}
    counts = {}
    for table in ("emails", "mailing_recipients"):
        counts[table] = await conn.fetchval(
            f"SELECT count(*) FROM notifications.{table} WHERE status = 'sending'"
        )
    return counts


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    highwater: int

    @property
    def lag(self) -> int:
        return max(0, self.highwater - self.committed)


async def consumer_lag(kafka: KafkaSettings, *, timeout_s: float = 15.0) -> list[PartitionLag]:
    """Lag of every consumer group on the business topics' partitions it has committed."""
    partitions = [TopicPartition(t.name, p) for t in BUSINESS_TOPICS for p in range(t.partitions)]
    admin = create_admin(kafka)
    await admin.start()
    try:
        groups = sorted(group for group, _kind in await admin.list_consumer_groups())
        committed: dict[tuple[str, TopicPartition], int] = {}
        for group in groups:
            # partitions= always: the embedded broker fails the call without it.
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            for tp, meta in offsets.items():
                if meta.offset >= 0:
                    committed[(group, tp)] = meta.offset
    finally:
        await admin.close()
    furthest: dict[TopicPartition, int] = {}
    for (_group, tp), offset in committed.items():
        furthest[tp] = max(offset, furthest.get(tp, 0))
    highwaters = await _highwaters(kafka, furthest, timeout_s)
    return [
        PartitionLag(group, tp.topic, tp.partition, offset, highwaters.get(tp, offset))
        for (group, tp), offset in sorted(committed.items(), key=lambda i: (i[0][0], *i[0][1]))
    ]


async def _highwaters(
    kafka: KafkaSettings, partitions: dict[TopicPartition, int], timeout_s: float
) -> dict[TopicPartition, int]:
    """Each partition's high watermark, as the first fetch from it reports (fetched from
    ``partitions[tp]`` on, so only the records not yet consumed travel)."""
    if not partitions:
        return {}
    consumer = create_consumer(kafka, group_id=None)
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        for tp, offset in partitions.items():
            consumer.seek(tp, offset)
        found: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(found) < len(partitions) and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=1)
            for tp in partitions:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    found[tp] = highwater
        return found
    finally:
        await consumer.stop()
