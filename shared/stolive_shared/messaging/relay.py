"""The outbox relay: publishes outbox rows to Kafka in id order, one leader per schema.

Leadership is a PostgreSQL advisory lock held on a dedicated connection: several relays sharing
one outbox would reorder messages of one key, so the others wait. The lock lives as long as
that connection, and a connection can die without the process noticing (a terminated backend,
a restarted server, a cut network) while a follower takes the lock at once. So the leader
sends nothing without proof: each send (a batch, a probe) runs inside a transaction that first
takes the schema's *send lock* (``pg_advisory_xact_lock``) and then asks the leadership
connection whether it is still there (``SELECT 1``, with a timeout). The send lock orders the
sends of any two relays; the check after it means a relay whose leadership connection died
stops before its next send, and a new leader's first send waits for the old one's last to
finish. A dead leadership connection ends the leadership at once (its termination listener
wakes the loop, which finds the connection gone and steps down).

The leader:

1. reads unpublished rows in id order, sends them with ``acks="all"``, waits for every ack and
   only then marks them published; a failed send retries the batch with backoff (consumers
   are idempotent by ``message_id``, so a resend is harmless);
2. wakes on ``NOTIFY outbox_<schema>`` from the writing transaction, or polls every second;
3. keeps published rows for ``retention`` (default 7 days) and deletes older ones;
4. detects that the broker lost its data: Kafka offsets only grow, so an acknowledgement at or
   below the highest offset it saw before on that partition (``outbox_relay_offsets``) means
   the log was wiped (the embedded broker forgets everything on restart; on Apache Kafka, a
   deleted and re-created topic). It then marks every retained row unpublished and publishes
   them again in order. A small probe record every few seconds, on a partition of its own,
   makes this work while no business message flows. After a loss the relay probes at once:
   only offsets acknowledged by the new log can reveal that it, too, was wiped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from stolive_shared.contracts.topics import RELAY_PROBES, probe_partition
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.messaging.outbox import wakeup_channel
from stolive_shared.metrics import OUTBOX_PUBLISHED, OUTBOX_REPUBLISH_ROUNDS
from stolive_shared.retry import Backoff
from stolive_shared.settings import KafkaSettings
from stolive_shared.telemetry import context_from_headers

log = logging.getLogger(__name__)

# How long the leadership connection may take to answer before the leader steps down.
LEADERSHIP_CHECK_TIMEOUT_S = 5.0
_tracer = trace.get_tracer(__name__)

_FETCH_BATCH = """
SELECT id, topic, key, headers, payload FROM outbox
WHERE published_at IS NULL ORDER BY id LIMIT $1
"""
_SEND_LOCK = "SELECT pg_advisory_xact_lock(hashtext($1))"
_MARK_PUBLISHED = """
UPDATE outbox SET published_at = now(), publish_count = publish_count + 1
WHERE id = ANY($1::bigint[])
"""
_SAVE_OFFSETS = """
INSERT INTO outbox_relay_offsets (topic, partition, max_offset)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
ON CONFLICT (topic, partition)
DO UPDATE SET max_offset = GREATEST(outbox_relay_offsets.max_offset, EXCLUDED.max_offset)
"""
_REPUBLISH_RETAINED = """
UPDATE outbox SET published_at = NULL WHERE published_at >= now() - $1::interval
"""


async def republish_retained(conn: asyncpg.Connection, retention: timedelta) -> int:
    """Send every retained row again (published within ``retention``): what to do when the
    broker lost its data. The relay does it when an offset goes backwards; the launcher does it
    for every schema once the embedded broker's topics are right again, whatever the relays
    noticed. Consumers are idempotent: a second copy changes nothing."""
    count: int = await conn.fetchval(
        "WITH r AS (" + _REPUBLISH_RETAINED + " RETURNING 1) SELECT count(*) FROM r", retention
    )
    return count


class LeadershipLost(Exception):
    """The leadership connection is gone or does not answer: another relay may lead now."""


_STEP_DOWN: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, LeadershipLost)
_CHECK_FAILED: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, TimeoutError)


@dataclass
class RelayStats:
    published: int = 0
    republish_rounds: int = 0
    send_failures: int = 0
    is_leader: bool = False
    leaderships: int = 0
    # When (the event loop's clock) this relay last sent something, and first sent as leader
    # this time: a test proves no two relays send at once.
    first_send_at: float | None = None
    last_send_at: float | None = None


class OutboxRelay:
    def __init__(
        self,
        *,
        database_url: str,
        pool: asyncpg.Pool,
        schema: str,
        kafka: KafkaSettings,
        batch_size: int = 500,
        retention: timedelta = timedelta(days=7),
        poll_interval_s: float = 1.0,
        probe_interval_s: float = 3.0,
        purge_interval_s: float = 60.0,
    ) -> None:
        self._database_url = database_url
        self._pool = pool
        self._schema = schema
        self._kafka = kafka
        self._batch_size = batch_size
        self._retention = retention
        self._poll_interval_s = poll_interval_s
        self._probe_interval_s = probe_interval_s
        self._purge_interval_s = purge_interval_s
        self._wakeup = asyncio.Event()
        self._max_offsets: dict[tuple[str, int], int] = {}
        self._probe_now = False
        self._lock_conn: asyncpg.Connection | None = None
        self.stats = RelayStats()

    async def run(self) -> None:
        """Relay until cancelled, surviving database and broker outages."""
        backoff = Backoff()
        while True:
            try:
                async with self._leadership():
                    backoff.reset()
                    await self._lead()
            except _STEP_DOWN as exc:
                self.stats.is_leader = False
                await backoff.wait("outbox relay lost PostgreSQL or its leadership", exc)
            finally:
                self.stats.is_leader = False

    async def backlog(self) -> int:
        async with self._pool.acquire() as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return count

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[None]:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._database_url, server_settings={"application_name": f"{self._schema}-relay"}
        )
        try:
            lock_key = f"outbox-relay:{self._schema}"
            # Followers poll for the lock: PostgreSQL has no wake-up for a released one.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):  # noqa: ASYNC110
                await asyncio.sleep(1.0)
            await conn.add_listener(wakeup_channel(self._schema), self._on_notify)
            conn.add_termination_listener(self._on_lock_lost)
            self._lock_conn = conn
            self.stats.is_leader = True
            self.stats.leaderships += 1
            self.stats.first_send_at = None
            log.info("outbox relay is the leader for schema %s", self._schema)
            yield
        finally:
            self._lock_conn = None
            # Closing the session releases the advisory lock.
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))

    def _on_notify(self, *_args: Any) -> None:
        self._wakeup.set()

    def _on_lock_lost(self, *_args: Any) -> None:
        # Wake the loop: its next check finds the connection gone and it steps down (a batch
        # under way finishes first; ``is_leader`` turns false once nothing is being sent).
        self._wakeup.set()

    @contextlib.asynccontextmanager
    async def _sending(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction in which this relay may send: it holds the schema's send lock and has
        just seen its leadership connection alive (see the module docstring)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_SEND_LOCK, f"outbox-send:{self._schema}")
            await self._check_leadership()
            loop = asyncio.get_running_loop()
            if self.stats.first_send_at is None:
                self.stats.first_send_at = loop.time()
            yield conn
            self.stats.last_send_at = loop.time()

    async def _check_leadership(self) -> None:
        lock = self._lock_conn
        if lock is None or lock.is_closed():
            raise LeadershipLost("the leadership connection is closed")
        try:
            async with asyncio.timeout(LEADERSHIP_CHECK_TIMEOUT_S):  # never swallows a cancel
                await lock.fetchval("SELECT 1")
        except _CHECK_FAILED as exc:
            raise LeadershipLost(f"the leadership connection does not answer: {exc!r}") from exc

    async def _lead(self) -> None:
        self._max_offsets = await self._load_offsets()
        producer = await self._start_producer()
        loop = asyncio.get_running_loop()
        next_probe = next_purge = loop.time()
        backoff = Backoff(first=0.2)
        try:
            while True:
                await self._check_leadership()
                try:
                    if self._probe_now or loop.time() >= next_probe:
                        await self._probe(producer)
                        self._probe_now = False
                        next_probe = loop.time() + self._probe_interval_s
                    sent = await self._publish_batch(producer)
                    backoff.reset()
                except KafkaError as exc:
                    self.stats.send_failures += 1
                    await backoff.wait("outbox relay cannot publish", exc)
                    continue
                if loop.time() >= next_purge:
                    await self._purge()
                    next_purge = loop.time() + self._purge_interval_s
                if sent < self._batch_size:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self._poll_interval_s)
        finally:
            await producer.stop()

    async def _start_producer(self) -> AIOKafkaProducer:
        backoff = Backoff(first=0.2)
        while True:
            producer = create_producer(self._kafka)
            try:
                await producer.start()
                return producer
            except KafkaError as exc:
                await producer.stop()
                await backoff.wait("outbox relay cannot reach Kafka", exc)

    async def _publish_batch(self, producer: AIOKafkaProducer) -> int:
        async with self._sending() as conn:
            rows = await conn.fetch(_FETCH_BATCH, self._batch_size)
            if not rows:
                return 0
            pending = []
            for row in rows:
                headers: dict[str, str] = row["headers"]
                with _tracer.start_as_current_span(
                    f"publish {row['topic']}",
                    context=context_from_headers(headers),
                    kind=trace.SpanKind.PRODUCER,
                ):
                    pending.append(
                        await producer.send(
                            row["topic"],
                            value=row["payload"],
                            key=row["key"].encode(),
                            headers=[(k, v.encode()) for k, v in headers.items()],
                        )
                    )
            acks = await asyncio.gather(*pending)
            lost = self._record_acks((ack.topic, ack.partition, ack.offset) for ack in acks)
            await conn.execute(_MARK_PUBLISHED, [row["id"] for row in rows])
            if lost:
                await self._schedule_republish(conn)
            await self._save_offsets(conn)
        self.stats.published += len(rows)
        OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        return len(rows)

    async def _probe(self, producer: AIOKafkaProducer) -> None:
        async with self._sending() as conn:
            ack = await producer.send_and_wait(
                RELAY_PROBES.name,
                value=self._schema.encode(),
                key=self._schema.encode(),
                partition=probe_partition(self._schema),
            )
            if self._record_acks([(ack.topic, ack.partition, ack.offset)]):
                await self._schedule_republish(conn)
                await self._save_offsets(conn)

    def _record_acks(self, acks: Iterable[tuple[str, int, int]]) -> bool:
        """Remember the highest acknowledged offsets; True when one went backwards."""
        acks = list(acks)
        lost = any(
            offset <= self._max_offsets.get((topic, partition), -1)
            for topic, partition, offset in acks
        )
        if lost:
            self._max_offsets = {}
        for topic, partition, offset in acks:
            key = (topic, partition)
            self._max_offsets[key] = max(self._max_offsets.get(key, -1), offset)
        return lost

    async def _schedule_republish(self, conn: asyncpg.Connection) -> None:
        count = await republish_retained(conn, self._retention)
        await conn.execute("DELETE FROM outbox_relay_offsets")
        # The probe partition's offset on the new log is not known yet (see _record_acks).
        self._probe_now = True
        self.stats.republish_rounds += 1
        OUTBOX_REPUBLISH_ROUNDS.labels(self._schema).inc()
        log.warning(
            "the broker lost its data: republishing %s retained outbox messages of schema %s",
            count,
            self._schema,
        )

    async def _save_offsets(self, conn: asyncpg.Connection) -> None:
        items = list(self._max_offsets.items())
        await conn.execute(
            _SAVE_OFFSETS,
            [topic for (topic, _), _ in items],
            [partition for (_, partition), _ in items],
            [offset for _, offset in items],
        )

    async def _load_offsets(self) -> dict[tuple[str, int], int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT topic, partition, max_offset FROM outbox_relay_offsets")
        return {(r["topic"], r["partition"]): r["max_offset"] for r in rows}

    async def _purge(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE published_at < now() - $1::interval", self._retention
            )
            await conn.execute(
                "DELETE FROM processed_messages WHERE processed_at < now() - $1::interval",
                self._retention * 2,
            )
