"""The consumer loop every service uses: idempotent handling, commit after the effect, DLQ.

For each record: decode it (an undecodable record goes to ``<topic>.dlq`` with the error in its
headers); then, in one PostgreSQL transaction, insert ``(consumer, message_id)`` into
``processed_messages`` and, only if that row is new, run the handler, which may write outbox
rows in the same transaction. A redelivered message therefore changes nothing. Offsets are
committed (``offset + 1``) only after the transaction commits.

What happens when handling fails depends on why (``failure_kind``):

- the database is away (connection lost, PostgreSQL restarting, too many connections): not the
  message's fault; retried with backoff until the database answers, never dead-lettered;
- a transient database conflict (deadlock, serialisation failure, lock not available): retried
  with exponential backoff for ``transient_retry_s`` (30 s) before the message is
  dead-lettered, so two use cases that lock in opposite order sort themselves out;
- a poison message (undecodable, fails validation): dead-lettered at once;
- any other error: retried ``max_attempts`` times, then dead-lettered.

A dead letter is replayed after a fix (``stolive dlq replay``); the effect still happens once,
because ``processed_messages`` only records messages whose effect committed.
Message types without a handler are skipped without a database round trip. A dead letter keeps
the record's headers and adds ``dlq.error``, ``dlq.error_type`` and where the record came from;
one too large even for the dead-letter topic goes without its value (``dlq.value_dropped``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
)
from opentelemetry import trace
from pydantic import ValidationError

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.topics import MAX_DEAD_LETTER_BYTES
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.errors import PoisonMessage
from stolive_shared.messaging.kafka import create_consumer, create_producer
from stolive_shared.metrics import CONSUMER_LAG, CONSUMER_MESSAGES
from stolive_shared.privacy.redaction import redact
from stolive_shared.retry import Backoff
from stolive_shared.settings import KafkaSettings
from stolive_shared.telemetry import context_from_kafka_headers

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

# How long a stopping consumer waits to leave its group politely.
CONSUMER_STOP_TIMEOUT_S = 3.0

# Conflicts between transactions that go away when tried again a little later.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.TransactionRollbackError,  # 40001 serialization failure, 40P01 deadlock detected
    asyncpg.LockNotAvailableError,  # 55P03
)

Failure = Literal["outage", "transient", "poison", "error"]


def failure_kind(error: BaseException) -> Failure:
    """Why handling failed, which decides how long to keep trying (see the module docstring)."""
    if isinstance(error, CONNECTION_ERRORS):
        return "outage"
    if isinstance(error, TRANSIENT_DB_ERRORS):
        return "transient"
    if isinstance(error, PoisonMessage | ValidationError):
        return "poison"
    return "error"


@dataclass(frozen=True)
class Delivery:
    """Where a message came from, for handlers that care."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


Handler = Callable[[asyncpg.Connection, Any, Delivery], Awaitable[None]]
M = TypeVar("M", bound=Message)


def on(
    model: type[M], use_case: Callable[[asyncpg.Connection, M], Awaitable[None]]
) -> tuple[type[Message], Handler]:
    """``model`` handled by ``use_case``, which receives it typed as ``model`` inside the
    consumer's transaction: the consumer dispatches once, on the message's type, and the use
    case never asks again. ``MessageConsumer(handlers=dict([on(A, f), on(B, g)]))``."""

    async def handle(conn: asyncpg.Connection, message: Any, _delivery: Delivery) -> None:
        assert isinstance(message, model)
        await use_case(conn, message)

    return model, handle


@dataclass
class ConsumerStats:
    handled: int = 0
    redeliveries: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    assigned: set[TopicPartition] = field(default_factory=set)
    lag: dict[str, int] = field(default_factory=dict)


class MessageConsumer:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        handlers: Mapping[type[Message], Handler],
        pool: asyncpg.Pool,
        kafka: KafkaSettings,
        max_attempts: int = 3,
        max_records: int = 500,
        transient_retry_s: float = 30.0,
    ) -> None:
        self.name = name
        self._topics = list(topics)
        self._handlers = {model.model_fields["type"].default: h for model, h in handlers.items()}
        self._pool = pool
        self._kafka = kafka
        self._max_attempts = max_attempts
        self._max_records = max_records
        self._transient_retry_s = transient_retry_s
        self._lag_labels: set[str] = set()
        self.stats = ConsumerStats()

    async def run(self) -> None:
        """Consume until cancelled, reconnecting after broker outages."""
        backoff = Backoff()
        while True:
            consumer = create_consumer(self._kafka, group_id=self.name)
            # A poison record may be larger than any valid message: let it through to the DLQ.
            dlq = create_producer(self._kafka, max_request_size=MAX_DEAD_LETTER_BYTES)
            try:
                await consumer.start()
                await dlq.start()
                consumer.subscribe(self._topics)
                backoff.reset()
                await self._consume(consumer, dlq)
            except KafkaError as exc:
                await consumer.stop()  # in full: this process goes on with a new consumer
                await dlq.stop()
                self.stats.assigned = set()
                await backoff.wait(f"consumer {self.name} lost Kafka", exc)
                continue
            except BaseException:
                await self._stop_for_exit(consumer)
                await dlq.stop()
                raise
            finally:
                self.stats.assigned = set()

    async def _stop_for_exit(self, consumer: AIOKafkaConsumer) -> None:
        """Stop as the process ends, leaving the group if that is quick. aiokafka first lets a
        rebalance under way finish, which after a member died lasts until its session times
        out (10 s here). Leaving without a goodbye loses nothing: offsets are committed after
        each batch, and a redelivered message is recognised."""
        try:
            await asyncio.wait_for(consumer.stop(), CONSUMER_STOP_TIMEOUT_S)
        except TimeoutError:
            log.info(
                "consumer %s stopped without leaving its group (rebalance under way)", self.name
            )

    async def _consume(self, consumer: AIOKafkaConsumer, dlq: AIOKafkaProducer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=self._max_records)
            self.stats.assigned = set(consumer.assignment())
            for tp, records in batches.items():
                for record in records:
                    await self._handle(record, dlq)
                try:
                    await consumer.commit({tp: records[-1].offset + 1})
                except (CommitFailedError, IllegalStateError) as exc:
                    # Partition moved to another member: it redelivers, processed_messages dedups.
                    log.info("consumer %s could not commit %s: %r", self.name, tp, exc)
            await self._record_lag(consumer)

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag of every assigned partition, from the high watermark each fetch reports (no
        ListOffsets: the embedded broker answers it wrongly); partitions this member lost
        leave the gauge, so a moved partition does not report a stale lag here."""
        labels: set[str] = set()
        for tp in consumer.assignment():
            try:
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` can swallow
                # a cancellation that meets its end, and the consumer would never stop.
                async with asyncio.timeout(1.0):
                    position = await consumer.position(tp)
            except (AssertionError, IllegalStateError, TimeoutError):
                continue  # unassigned by a rebalance just now
            label = f"{tp.topic}/{tp.partition}"
            lag = max(0, highwater - position)
            self.stats.lag[label] = lag
            CONSUMER_LAG.labels(self.name, label).set(lag)
            labels.add(label)
        for gone in self._lag_labels - labels:
            self.stats.lag.pop(gone, None)
            CONSUMER_LAG.remove(self.name, gone)
        self._lag_labels = labels

    async def _handle(self, record: Any, dlq: AIOKafkaProducer) -> None:
        with _tracer.start_as_current_span(
            f"consume {record.topic}",
            context=context_from_kafka_headers(record.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.consumer.group.name": self.name},
        ):
            try:
                message = decode(record.value)
            except PoisonMessage as exc:
                await self._dead_letter(record, exc, dlq)
                return
            handler = self._handlers.get(message.type)
            if handler is None:
                self.stats.skipped += 1
                CONSUMER_MESSAGES.labels(self.name, "skipped").inc()
                return
            await self._handle_until_settled(record, message, handler, dlq)

    async def _handle_until_settled(
        self, record: Any, message: Message, handler: Handler, dlq: AIOKafkaProducer
    ) -> None:
        """Apply ``message`` until it has its effect or is dead-lettered (see ``failure_kind``)."""
        delivery = Delivery(record.topic, record.partition, record.offset, record.timestamp)
        loop = asyncio.get_running_loop()
        attempts = 0
        outage = Backoff(first=0.2)
        transient = Backoff(first=0.1)
        transient_since: float | None = None
        while True:
            try:
                await self._apply(message, handler, delivery)
                return
            except Exception as exc:
                kind = failure_kind(exc)
                if kind == "outage":
                    await outage.wait(f"consumer {self.name} waits for PostgreSQL", exc)
                    continue
                if kind == "transient":
                    transient_since = transient_since or loop.time()
                    if loop.time() - transient_since < self._transient_retry_s:
                        await transient.wait(f"consumer {self.name} retries a conflict", exc)
                        continue
                elif kind == "error":
                    attempts += 1
                    if attempts < self._max_attempts:
                        await asyncio.sleep(0.1 * attempts)
                        continue
                if kind != "poison":
                    log.exception("consumer %s gives up on %s", self.name, message.message_id)
                await self._dead_letter(record, exc, dlq)
                return

    async def _apply(self, message: Message, handler: Handler, delivery: Delivery) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            first = await conn.fetchval(
                "INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING true",
                self.name,
                message.message_id,
            )
            if first:
                await handler(conn, message, delivery)
        outcome = "handled" if first else "redelivered"
        if first:
            self.stats.handled += 1
        else:
            self.stats.redeliveries += 1
            log.info(
                "consumer %s skipped a redelivered message",
                self.name,
                extra={"ctx_redelivered": str(message.message_id)},
            )
        CONSUMER_MESSAGES.labels(self.name, outcome).inc()

    async def _dead_letter(self, record: Any, error: BaseException, dlq: AIOKafkaProducer) -> None:
        headers = [
            *(record.headers or ()),
            ("dlq.error", redact(str(error))[:2000].encode()),
            ("dlq.error_type", type(error).__name__.encode()),
            ("dlq.source_topic", record.topic.encode()),
            ("dlq.source_partition", str(record.partition).encode()),
            ("dlq.source_offset", str(record.offset).encode()),
            ("dlq.consumer", self.name.encode()),
        ]
        value = record.value
        try:
            await dlq.send_and_wait(
                f"{record.topic}.dlq", value=value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # Too large even for the dead-letter topic: keep the error and where it came from,
            # or the consumer would retry this record forever.
            headers.append(("dlq.value_dropped", str(len(value or b"")).encode()))
            await dlq.send_and_wait(
                f"{record.topic}.dlq", value=None, key=record.key, headers=headers
            )
        self.stats.dead_lettered += 1
        CONSUMER_MESSAGES.labels(self.name, "dead_lettered").inc()
        log.warning(
            "consumer %s dead-lettered %s[%s]@%s: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            error,
        )
