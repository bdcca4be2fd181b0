"""Dead letters operators can work with: list, show, replay to the original topic, discard.

A consumer that cannot handle a record sends it to ``<topic>.dlq`` with its error in the
headers (``consumer.py``, and analytics' Faust agents). The topic is the truth about what died;
a broker cannot delete one record from it, so what operators did with a letter is kept in
PostgreSQL (``operations.dead_letters_handled``) and a letter is *open* while no row names it.

A replay sends the letter's value to its original topic with its original key (so it lands on
the partition its key belongs to, in order with newer messages of that key) and its original
headers without the ``dlq.*`` ones. The row is written in the same transaction that waits for
the broker's acknowledgement: if the row cannot commit the letter stays open, and replaying it
again is harmless because every consumer is idempotent by message id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from stolive_shared.contracts.codec import header
from stolive_shared.contracts.topics import BUSINESS_TOPICS
from stolive_shared.db import CONNECTION_ERRORS, _apply, migration_files
from stolive_shared.messaging import MIGRATIONS, SCHEMA
from stolive_shared.messaging.kafka import create_consumer, create_producer
from stolive_shared.metrics import DEAD_LETTERS_OPEN
from stolive_shared.settings import KafkaSettings

log = logging.getLogger(__name__)

DEAD_LETTER_TOPICS: tuple[str, ...] = tuple(topic.dlq.name for topic in BUSINESS_TOPICS)
_PARTITIONS = {topic.dlq.name: topic.dlq.partitions for topic in BUSINESS_TOPICS}

Identity = tuple[str, int, int, int]  # dlq topic, partition, offset, timestamp (ms)

_HANDLED = f"""SELECT dlq_topic, dlq_partition, dlq_offset, dlq_timestamp_ms
               FROM {SCHEMA}.dead_letters_handled"""
_MARK = f"""INSERT INTO {SCHEMA}.dead_letters_handled
    (dlq_topic, dlq_partition, dlq_offset, dlq_timestamp_ms, action, source_topic, message_id,
     handled_by, note)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT DO NOTHING RETURNING true"""


class DeadLetterError(Exception):
    """What an operator asked cannot be done; the message says why (printed as it is)."""


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with the error its consumer gave it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def id(self) -> str:
        """How an operator names it: ``sto.events.dlq:0:17``."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def identity(self) -> Identity:
        return (self.topic, self.partition, self.offset, self.timestamp_ms)

    def header(self, name: str) -> str | None:
        return header(self.headers, name)

    @property
    def source_topic(self) -> str:
        return self.header("dlq.source_topic") or self.topic.removesuffix(".dlq")

    @property
    def error(self) -> str:
        return self.header("dlq.error") or ""

    @property
    def error_type(self) -> str:
        return self.header("dlq.error_type") or ""

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers: the dead-letter ones taken off."""
        return [(k, bytes(v)) for k, v in self.headers if not k.startswith("dlq.")]

    def summary(self) -> dict[str, Any]:
        """What ``list`` shows and the page lists: ids and the error, never the value."""
        return {
            "id": self.id,
            "key": (self.key or b"").decode("utf-8", "replace"),
            "source": f"{self.source_topic}[{self.header('dlq.source_partition')}]"
            f"@{self.header('dlq.source_offset')}",
            "consumer": self.header("dlq.consumer") or "",
            "type": self.header("type") or "",
            "message_id": self.header("message_id") or "",
            "error_type": self.error_type,
            "error": self.error,
            "timestamp_ms": self.timestamp_ms,
        }


def parse_id(text: str) -> tuple[str, int, int]:
    """``sto.events.dlq:0:17`` -> (topic, partition, offset)."""
    try:
        topic, partition, offset = text.rsplit(":", 2)
        return topic, int(partition), int(offset)
    except ValueError:
        raise DeadLetterError(
            f"{text!r} is not a dead letter's id (like sto.events.dlq:0:17)"
        ) from None


async def ensure_schema(database_url: str) -> None:
    """Create the ``operations`` schema if no service migration did yet."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await _apply(conn, SCHEMA, migration_files([MIGRATIONS]))
    finally:
        await conn.close()


async def read_dead_letters(
    kafka: KafkaSettings,
    start: dict[TopicPartition, int] | None = None,
    *,
    timeout_s: float = 30.0,
) -> tuple[list[DeadLetter], dict[TopicPartition, int]]:
    """Every letter from ``start`` (default: each dead-letter topic's beginning) to its end, and
    where each partition ends. The end is the high watermark a fetch reports, not ListOffsets
    (which the embedded broker answers wrongly). A partition that ends before its start was
    wiped (the embedded broker restarted): it is read from its beginning instead."""
    if start is None:
        start = {
            TopicPartition(topic, p): 0
            for topic in DEAD_LETTER_TOPICS
            for p in range(_PARTITIONS[topic])
        }
    consumer = create_consumer(kafka, group_id=None)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        letters: list[DeadLetter] = []
        ends: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(ends) < len(start):
            if time.monotonic() > deadline:
                raise TimeoutError(f"dead-letter topics not read to their end in {timeout_s:.0f}s")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                letters.extend(_letter(r) for r in records)
            for tp in start:
                highwater = consumer.highwater(tp)
                if tp in ends or highwater is None:
                    continue
                if highwater < start[tp]:
                    consumer.seek(tp, 0)  # wiped: nothing we knew is there any more
                    start[tp] = 0
                elif await consumer.position(tp) >= highwater:
                    ends[tp] = highwater
        return letters, ends
    finally:
        await consumer.stop()


def _dead_letter_partitions() -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in DEAD_LETTER_TOPICS for p in range(_PARTITIONS[t])]


def _letter(record: Any) -> DeadLetter:
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        headers=tuple((k, bytes(v)) for k, v in record.headers or ()),
    )


async def handled_identities(conn: asyncpg.Connection) -> set[Identity]:
    rows = await conn.fetch(_HANDLED)
    return {(r[0], r[1], r[2], r[3]) for r in rows}


class DeadLetters:
    """The open dead letters, and what an operator does with one."""

    def __init__(self, kafka: KafkaSettings, pool: asyncpg.Pool) -> None:
        self._kafka = kafka
        self._pool = pool

    async def open(self, topics: Sequence[str] = ()) -> list[DeadLetter]:
        """Open letters, oldest first; only those of ``topics`` (dlq or source names) if given."""
        letters, _ends = await read_dead_letters(self._kafka)
        async with self._pool.acquire() as conn:
            handled = await handled_identities(conn)
        wanted = {t if t.endswith(".dlq") else f"{t}.dlq" for t in topics}
        return [
            letter
            for letter in letters
            if letter.identity not in handled and (not wanted or letter.topic in wanted)
        ]

    async def find(self, letter_id: str) -> DeadLetter:
        """The open letter ``letter_id`` names; an error if there is none or it was handled."""
        topic, partition, offset = parse_id(letter_id)
        if topic not in DEAD_LETTER_TOPICS:
            raise DeadLetterError(f"{topic} is not a dead-letter topic")
        letters, _ends = await read_dead_letters(self._kafka, {TopicPartition(topic, partition): 0})
        found = [x for x in letters if x.offset == offset]
        if not found:
            raise DeadLetterError(f"no dead letter {letter_id}")
        async with self._pool.acquire() as conn:
            if found[0].identity in await handled_identities(conn):
                raise DeadLetterError(f"dead letter {letter_id} was already handled")
        return found[0]

    async def replay(self, letter_id: str, *, by: str, note: str | None = None) -> tuple[int, int]:
        """Send the letter to its original topic; return (partition, offset) it landed at."""
        letter = await self.find(letter_id)
        if letter.value is None:
            raise DeadLetterError(
                f"dead letter {letter_id} was too large to keep its value: it cannot be replayed"
            )
        producer = create_producer(self._kafka)
        await producer.start()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._mark(conn, letter, "replayed", by, note)
                ack = await producer.send_and_wait(
                    letter.source_topic,
                    value=letter.value,
                    key=letter.key,
                    headers=letter.replay_headers(),
                )
                await conn.execute(
                    f"UPDATE {SCHEMA}.dead_letters_handled"
                    " SET replayed_partition = $5, replayed_offset = $6"
                    " WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3"
                    " AND dlq_timestamp_ms = $4",
                    *letter.identity,
                    ack.partition,
                    ack.offset,
                )
        finally:
            await producer.stop()
        log.info("dead letter %s replayed to %s by %s", letter_id, letter.source_topic, by)
        return ack.partition, ack.offset

    async def discard(self, letter_id: str, *, by: str, note: str | None = None) -> None:
        """Mark the letter handled without sending it anywhere."""
        letter = await self.find(letter_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._mark(conn, letter, "discarded", by, note)
        log.info("dead letter %s discarded by %s", letter_id, by)

    async def _mark(
        self, conn: asyncpg.Connection, letter: DeadLetter, action: str, by: str, note: str | None
    ) -> None:
        first = await conn.fetchval(
            _MARK,
            *letter.identity,
            action,
            letter.source_topic,
            letter.header("message_id"),
            by,
            note,
        )
        if not first:
            raise DeadLetterError(f"dead letter {letter.id} was already handled")


_NOT_COUNTED: tuple[type[BaseException], ...] = (
    KafkaError,
    TimeoutError,
    asyncpg.UndefinedTableError,
    *CONNECTION_ERRORS,
)


class DeadLetterMonitor:
    """Open dead letters per topic for ``/metrics`` (``stolive_dead_letters_open``).

    A ``MetricsProbe``: at scrape time it reads only what is new on the dead-letter topics
    since it last looked (at most every ``min_interval_s``) and counts the letters no row in
    PostgreSQL marks handled. A broker or table that is not there leaves the last figures.
    """

    def __init__(self, kafka: KafkaSettings, *, min_interval_s: float = 10.0) -> None:
        self._kafka = kafka
        self._min_interval_s = min_interval_s
        self._next_look = 0.0
        self._ends: dict[TopicPartition, int] = {}
        self._seen: dict[TopicPartition, dict[int, Identity]] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, conn: asyncpg.Connection) -> None:
        async with self._lock:
            if time.monotonic() < self._next_look:
                return
            self._next_look = time.monotonic() + self._min_interval_s
            try:
                await self._read_new()
                handled = await handled_identities(conn)
            except (
                KafkaError,
                TimeoutError,
                asyncpg.UndefinedTableError,
                *CONNECTION_ERRORS,
            ) as exc:
                log.warning("open dead letters not counted: %r", exc)
                return
            for topic, count in self.counts(handled).items():
                DEAD_LETTERS_OPEN.labels(topic).set(count)

    async def _read_new(self) -> None:
        start = {tp: self._ends.get(tp, 0) for tp in _dead_letter_partitions()}
        letters, self._ends = await read_dead_letters(self._kafka, dict(start), timeout_s=5.0)
        located = [(TopicPartition(x.topic, x.partition), x) for x in letters]
        for tp in {tp for tp, letter in located if letter.offset < start[tp]}:
            self._seen.pop(tp, None)  # read again from 0: the log was wiped
        for tp, letter in located:
            self._seen.setdefault(tp, {})[letter.offset] = letter.identity

    def counts(self, handled: Iterable[Identity]) -> dict[str, int]:
        done = set(handled)
        counts = dict.fromkeys(DEAD_LETTER_TOPICS, 0)
        for tp, letters in self._seen.items():
            counts[tp.topic] += sum(1 for identity in letters.values() if identity not in done)
        return counts
