"""Poison among valid traffic: 1 % bad records on the real topics, consumed by the real platform.

40 poison records, 8 of each kind (bad JSON, unknown type, wrong version, a 2 MB value, bad
UTF-8), are mixed into 3,960 valid messages on the events, registrations, viewer-activity and
analytics topics, on the partitions valid traffic uses. Every consumer of a topic, the
``MessageConsumer`` loops of registrations and notifications and the analytics Faust agents,
must dead-letter each poison record once to ``<topic>.dlq`` with the error in its headers, handle
every valid message (its row in PostgreSQL: ``processed_messages``, the service's own tables,
the analytics read model), dead-letter nothing valid, and still be alive afterwards: no process
exited, and a valid record follows every poison record on its partition, so each consumer and
agent got past every poison record it met.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from stolive_shared.contracts.analytics import AttendanceRecorded
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.codec import Headers, encode, header
from stolive_shared.contracts.events import EventPublished, EventSnapshot
from stolive_shared.contracts.registrations import RegistrationConfirmed
from stolive_shared.contracts.topics import (
    ANALYTICS,
    EVENTS,
    REGISTRATIONS,
    VIEWER_ACTIVITY,
    TopicSpec,
)
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.settings import KafkaSettings
from tests.e2e.conftest import Platform
from tests.sealing import TEST_KEYS
from tests.support import eventually, read_topic

EVENT_COUNT = 40
REGISTRATION_COUNT = 400
ATTENDANCE_COUNT = 120
BEACON_COUNT = 3_400
TWO_MB = 2 * 1024 * 1024

# Who reads each topic: one dead letter per poison record per consumer (group).
TOPICS = (EVENTS, REGISTRATIONS, VIEWER_ACTIVITY, ANALYTICS)
CONSUMERS: dict[str, tuple[str, ...]] = {
    EVENTS.name: ("registrations.events", "notifications.events", "analytics.events"),
    REGISTRATIONS.name: ("notifications.registrations", "analytics.registrations"),
    VIEWER_ACTIVITY.name: ("analytics.viewers",),
    ANALYTICS.name: ("notifications.analytics", "registrations.attendance"),
}
POISON_PER_KIND_PER_TOPIC = 2


def _bad_json(value: bytes) -> bytes:
    return value[: len(value) // 2]


def _unknown_type(value: bytes) -> bytes:
    return json.dumps({**json.loads(value), "type": "sto.no-such-message"}).encode()


def _wrong_version(value: bytes) -> bytes:
    return json.dumps({**json.loads(value), "version": 99}).encode()


def _two_megabytes(value: bytes) -> bytes:
    """A valid message padded with JSON whitespace: only its size is wrong."""
    return value + b" " * (TWO_MB - len(value))


def _bad_utf8(value: bytes) -> bytes:
    """Valid JSON but for two bytes that are no UTF-8, inside the message id string."""
    message_id = json.loads(value)["message_id"].encode()
    return value.replace(message_id, message_id[:8] + b"\xff\xfe" + message_id[8:], 1)


POISON_KINDS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "bad JSON": (_bad_json, "UndecodableMessage"),
    "unknown type": (_unknown_type, "UnknownMessageType"),
    "wrong version": (_wrong_version, "UnknownMessageType"),
    "2 MB value": (_two_megabytes, "UndecodableMessage"),
    "bad UTF-8": (_bad_utf8, "UndecodableMessage"),
}


@dataclass(frozen=True)
class Record:
    topic: TopicSpec
    key: bytes
    value: bytes
    headers: Headers
    poison_kind: str | None = None


@dataclass
class Traffic:
    events: list[EventPublished]
    registrations: list[RegistrationConfirmed]
    attendance: list[AttendanceRecorded]
    beacons: list[ViewerBeacon]
    records: list[Record]

    @property
    def poison(self) -> list[Record]:
        return [r for r in self.records if r.poison_kind is not None]

    @property
    def valid_count(self) -> int:
        return len(self.records) - len(self.poison)


def make_traffic(rng: random.Random) -> Traffic:
    now = datetime.now(UTC)
    starts = now + timedelta(days=10)
    events = [
        EventPublished.create(
            event=EventSnapshot(
                event_id=uuid.uuid4(),
                revision=2,
                kind="webinar",
                status="published",
                title=f"Gifbestendig {n}",
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
            )
        )
        for n in range(EVENT_COUNT)
    ]
    registrations = [
        RegistrationConfirmed.create(
            registration=TEST_KEYS.view(
                event_id=events[n % EVENT_COUNT].event.event_id,
                name=f"Deelnemer {n}",
                email=f"deelnemer-{n}@school.nl",
                viewer_id=f"v_reg_{n}",
                event_title=events[n % EVENT_COUNT].event.title,
                event_starts_at=starts,
                event_ends_at=starts + timedelta(hours=1),
                event_revision=2,
            )
        )
        for n in range(REGISTRATION_COUNT)
    ]
    attendance = [
        AttendanceRecorded.create(
            event_id=r.registration.event_id,
            registration_id=r.registration.registration_id,
            minutes_watched=12.0,
            watched_live=True,
            checked_in=False,
            attended=True,
        )
        for r in registrations[:ATTENDANCE_COUNT]
    ]
    # One beacon per viewer (a join in the last minutes): one viewer-minute row each.
    beacons = [
        ViewerBeacon.create(
            event_id=events[n % EVENT_COUNT].event.event_id,
            viewer_id=f"v_{n}",
            action="join",
            mode="live",
            client_ts=now - timedelta(seconds=n % 50),
            received_at=now - timedelta(seconds=n % 50),
        )
        for n in range(BEACON_COUNT)
    ]
    records: list[Record] = []
    for topic, messages in (
        (EVENTS, events),
        (REGISTRATIONS, registrations),
        (ANALYTICS, attendance),
        (VIEWER_ACTIVITY, beacons),
    ):
        stream = [_record(topic, m) for m in messages]
        for kind, (spoil, _) in POISON_KINDS.items():
            for _ in range(POISON_PER_KIND_PER_TOPIC):
                # Spoiled from a fresh message of the topic (never sent valid), and keyed like
                # the record it is put before: a valid record follows every poison record on
                # its partition, so handling that one shows the consumer got past the poison.
                at = rng.randrange(len(stream))
                value = spoil(_record(topic, _fresh_like(rng.choice(messages))).value)
                headers: Headers = [("poison.kind", kind.encode())]
                stream.insert(at, Record(topic, stream[at].key, value, headers, kind))
        records.extend(stream)
    return Traffic(events, registrations, attendance, beacons, records)


def _record(topic: TopicSpec, message: Message) -> Record:
    value, headers = encode(message)
    return Record(topic, message.partition_key().encode(), value, headers)


def _fresh_like(message: Message) -> Message:
    return message.model_copy(update={"message_id": uuid.uuid4()})


async def produce(kafka: KafkaSettings, records: list[Record]) -> None:
    # Uncompressed and allowed past 2 MB: the oversized records reach the broker as they are.
    producer = create_producer(
        kafka, linger_ms=20, compression_type=None, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        acks = [
            await producer.send(r.topic.name, value=r.value, key=r.key, headers=r.headers)
            for r in records
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def dead_letters(kafka: KafkaSettings, keys: set[bytes]) -> dict[str, list[Any]]:
    """Source topic -> the records in its dead-letter topic keyed by one of this test's events."""
    found: dict[str, list[Any]] = {}
    for topic in TOPICS:
        records = await read_topic(kafka, topic.dlq.name, 1)
        found[topic.name] = [r for r in records if r.key in keys]
    return found


async def count(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    value: int = await conn.fetchval(sql, *args)
    return value


async def handled(conn: asyncpg.Connection, traffic: Traffic) -> dict[str, int]:
    """How many valid messages each consumer has the effect of, read from PostgreSQL."""
    event_ids = [e.event.event_id for e in traffic.events]
    registration_ids = [r.registration.registration_id for r in traffic.registrations]

    async def processed(schema: str, consumer: str, messages: list[Any]) -> int:
        return await count(
            conn,
            f"SELECT count(*) FROM {schema}.processed_messages"
            " WHERE consumer = $1 AND message_id = ANY($2)",
            consumer,
            [m.message_id for m in messages],
        )

    return {
        "registrations.events": min(
            await processed("registrations", "registrations.events", traffic.events),
            await count(
                conn, "SELECT count(*) FROM registrations.events WHERE id = ANY($1)", event_ids
            ),
        ),
        "notifications.events": await processed(
            "notifications", "notifications.events", traffic.events
        ),
        "notifications.registrations": min(
            await processed("notifications", "notifications.registrations", traffic.registrations),
            await count(
                conn,
                "SELECT count(DISTINCT registration_id) FROM notifications.emails"
                " WHERE registration_id = ANY($1)",
                registration_ids,
            ),
        ),
        "notifications.analytics": min(
            await processed("notifications", "notifications.analytics", traffic.attendance),
            await count(
                conn,
                "SELECT count(*) FROM notifications.attendance WHERE registration_id = ANY($1)",
                registration_ids,
            ),
        ),
        "analytics.events": await count(
            conn,
            "SELECT count(*) FROM analytics.tracked_events WHERE event_id = ANY($1)",
            event_ids,
        ),
        "analytics.registrations": min(
            await count(
                conn,
                "SELECT coalesce(sum(confirmed), 0) FROM analytics.registration_counts"
                " WHERE event_id = ANY($1)",
                event_ids,
            ),
            await count(
                conn,
                "SELECT count(*) FROM analytics.registrants WHERE registration_id = ANY($1)",
                registration_ids,
            ),
        ),
        # One viewer per beacon, all in recent minutes: one (event, viewer, minute) row each.
        "analytics.viewers": await count(
            conn,
            "SELECT count(*) FROM analytics.viewer_minutes WHERE event_id = ANY($1)",
            event_ids,
        ),
    }


def expected_handled(traffic: Traffic) -> dict[str, int]:
    return {
        "registrations.events": len(traffic.events),
        "notifications.events": len(traffic.events),
        "notifications.registrations": len(traffic.registrations),
        "notifications.analytics": len(traffic.attendance),
        "analytics.events": len(traffic.events),
        "analytics.registrations": len(traffic.registrations),
        "analytics.viewers": len(traffic.beacons),
    }


async def test_poison_is_dead_lettered_valid_traffic_handled_and_consumers_live_on(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    rng = random.Random(20_250_609)
    traffic = make_traffic(rng)
    poison = traffic.poison
    assert len(poison) == len(POISON_KINDS) * POISON_PER_KIND_PER_TOPIC * len(CONSUMERS)
    assert len(poison) * 100 == len(traffic.records)  # 1 %
    keys = {r.key for r in traffic.records}
    kafka = platform.kafka
    keys_db = await asyncpg.connect(platform.stack.database_url)
    try:
        await TEST_KEYS.store(keys_db)  # as the sign-ups stored them with their registrations
    finally:
        await keys_db.close()
    started = time.monotonic()
    await produce(kafka, traffic.records)

    # Every poison record once per consumer of its topic, in that topic's dead-letter topic.
    expected_letters = {
        (r.topic.name, r.value, consumer) for r in poison for consumer in CONSUMERS[r.topic.name]
    }
    kind_of = {(r.topic.name, r.value): r.poison_kind for r in poison}
    letters: dict[str, list[Any]] = {}
    missing: Counter[tuple[str, str, str | None]] = Counter()

    async def all_dead_lettered() -> bool:
        nonlocal letters
        letters = await dead_letters(kafka, keys)
        seen = {
            (topic, r.value, header(r.headers, "dlq.consumer"))
            for topic, records in letters.items()
            for r in records
        }
        missing.clear()
        missing.update((t, c, kind_of[(t, v)]) for t, v, c in expected_letters - seen)
        return not missing

    try:
        await eventually(
            all_dead_lettered, what=f"{len(expected_letters)} dead letters", timeout_s=60
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}: missing (topic, consumer, kind) {dict(missing)}") from exc

    database = await asyncpg.connect(platform.stack.database_url)
    try:
        wanted = expected_handled(traffic)
        last: dict[str, int] = {}

        async def all_handled() -> bool:
            nonlocal last
            last = await handled(database, traffic)
            return last == wanted

        try:
            await eventually(all_handled, what="every valid message handled", timeout_s=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: handled {last}, wanted {wanted}") from exc
    finally:
        await database.close()
    elapsed = time.monotonic() - started

    letters = await dead_letters(kafka, keys)  # everything is handled now: the final count
    duplicates = 0
    seen_pairs: set[tuple[str, bytes, str | None]] = set()
    for topic, records in letters.items():
        for record in records:
            kind = kind_of.get((topic, record.value))
            consumer = header(record.headers, "dlq.consumer")
            assert kind is not None, f"a valid message was dead-lettered by {consumer}: {record!r}"
            assert consumer in CONSUMERS[topic]
            assert header(record.headers, "dlq.error_type") == POISON_KINDS[kind][1], (kind, record)
            assert header(record.headers, "dlq.error")
            assert header(record.headers, "dlq.source_topic") == topic
            assert header(record.headers, "dlq.source_partition") is not None
            assert header(record.headers, "dlq.source_offset") is not None
            assert header(record.headers, "poison.kind") == kind  # the original headers too
            if (topic, record.value, consumer) in seen_pairs:
                duplicates += 1
            seen_pairs.add((topic, record.value, consumer))
    oversized = [r for records in letters.values() for r in records if len(r.value) == TWO_MB]
    assert len(oversized) == sum(
        POISON_PER_KIND_PER_TOPIC * len(consumers) for consumers in CONSUMERS.values()
    )

    # Alive: no process exited or was restarted, every API is ready.
    processes = platform.stack.processes
    assert all(p.is_running() and p.restarts == 0 for p in processes), [
        (p.name, p.exit_code(), p.restarts) for p in processes
    ]
    async with httpx.AsyncClient(timeout=5) as client:
        for process in processes:
            if process.health_url:
                assert (await client.get(process.health_url)).status_code == 200, process.name

    letters_total = sum(len(records) for records in letters.values())
    figures(
        f"poison: {len(poison)} bad records ({len(poison) // len(POISON_KINDS)} each of "
        f"{len(POISON_KINDS)} kinds) of {len(traffic.records):,} on {len(CONSUMERS)} topics, "
        f"{letters_total} dead letters with error headers ({len(expected_letters)} expected: one "
        f"per consumer of the topic; {duplicates} duplicates); {traffic.valid_count:,} valid "
        f"handled by all {len(wanted)} consumers, none dead-lettered; {len(processes)} processes "
        f"alive, 0 restarts; {elapsed:.1f}s"
    )
