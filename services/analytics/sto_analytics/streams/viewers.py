"""Live viewers per event from the viewer-activity topic, built for 100,000 viewers per worker.

Per beacon the worker does only in-memory work; per batch (``take_events``: up to
``beacon_batch_size`` beacons or what arrived within ``beacon_batch_within_s``) it does one
write to the ``live_viewers`` table per event touched and one round of read-model writes
(``ReadModelWriter.save_viewing``, one transaction): the new (viewer, mode, minute) entries,
the minutes of the recording replay beacons showed (``position_s``), the live counts and the
per-minute maxima. Faust acks the batch only after that, so a beacon
whose minute is not in PostgreSQL is never committed.

The set of live viewers (see ``domain.LiveViewers``) lives in memory, not in a table: a
changelog write per beacon is what made a plain Faust agent too slow. When this worker gets a
viewer-activity partition (start, restart after SIGKILL, rebalance) it re-reads the beacons of
the last live timeout from that partition (``offsets_for_times``) and merges them, newest
timestamp winning, so the count is right again within seconds. Peaks and the chart come from
the ``live_viewers`` table (recovered from its changelog) and the read model, both raised only.

The table is written with ``use_partitioner`` and raw (bytes) keys: a key goes to the changelog
partition its event id hashes to, the same as in the source topic, from the agent and from
the expiry timer alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from sto_analytics import repository
from sto_analytics.config import AnalyticsSettings
from sto_analytics.domain import (
    UNKNOWN,
    LiveViewers,
    Peak,
    breakdown,
    minute_of,
    recording_minute,
)
from sto_analytics.service import ReadModelWriter
from sto_analytics.streams.dead_letters import DeadLetters
from sto_analytics.streams.shared import Shared, until_written
from stolive_shared.contracts.codec import MAX_MESSAGE_BYTES, decode
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.errors import PoisonMessage, UndecodableMessage
from stolive_shared.messaging.kafka import create_consumer

log = logging.getLogger(__name__)


@dataclass
class EventLive:
    """What one worker knows of one event it owns."""

    partition: int
    viewers: LiveViewers
    peak: Peak = field(default_factory=Peak)
    written_count: int = -1
    # minute -> highest live count seen in it, not yet in the read model
    minute_max: dict[int, int] = field(default_factory=dict)
    by_region: dict[str, int] = field(default_factory=dict)
    by_role: dict[str, int] = field(default_factory=dict)


class LiveState:
    """Every event this worker owns a viewer-activity partition of."""

    def __init__(self, timeout_s: float, table: Any) -> None:
        self.timeout_s = timeout_s
        self.table = table
        self.events: dict[str, EventLive] = {}
        # minute -> (event, viewer, mode) already written for it: skip repeats within a minute
        self.recorded: dict[int, set[tuple[str, str, str]]] = {}

    def event(self, key: str, partition: int) -> EventLive:
        known = self.events.get(key)
        if known is None:
            stored = self.table.get(key.encode()) or {}
            peak = Peak(int(stored.get("peak", 0)), float(stored.get("peak_at", 0.0)))
            known = self.events[key] = EventLive(partition, LiveViewers(self.timeout_s), peak)
        return known

    def first_in_minute(self, key: str, viewer_id: str, mode: str, minute: int) -> bool:
        seen = self.recorded.setdefault(minute, set())
        entry = (key, viewer_id, mode)
        if entry in seen:
            return False
        seen.add(entry)
        if len(self.recorded) > 3:
            for old in sorted(self.recorded)[:-3]:
                del self.recorded[old]
        return True

    def observe(self, live: EventLive, now: float) -> None:
        count = live.viewers.count()
        live.peak = live.peak.higher(count, now)
        minute = minute_of(now)
        if count > live.minute_max.get(minute, -1):
            live.minute_max[minute] = count

    def forget_partitions(self, partitions: set[int]) -> None:
        for key in [k for k, live in self.events.items() if live.partition in partitions]:
            del self.events[key]


def register(
    app: faust.App, settings: AnalyticsSettings, shared: Shared, writer: ReadModelWriter
) -> LiveState:
    source = app.topic(
        VIEWER_ACTIVITY.name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=VIEWER_ACTIVITY.partitions,
    )
    dead_letters = DeadLetters(app, VIEWER_ACTIVITY, "analytics.viewers")
    table = app.Table(
        "live_viewers",
        default=dict,
        partitions=VIEWER_ACTIVITY.partitions,
        # bytes keys are serialized raw: the event id's bytes, hashed as in the source topic.
        key_type=bytes,
        value_type=None,  # autodetect: plain JSON objects (dict has no from_data)
        use_partitioner=True,
    )
    state = LiveState(settings.live_timeout_s, table)
    owned: set[int] = set()

    @app.agent(source, name="count-viewers")
    async def count_viewers(stream: faust.StreamT[bytes]) -> None:
        batches: Any = stream
        async for events in batches.take_events(
            settings.beacon_batch_size, within=settings.beacon_batch_within_s
        ):
            now = time.time()
            touched: set[str] = set()
            minutes: list[tuple[uuid.UUID, str, str, int]] = []
            recording: list[tuple[uuid.UUID, str, int, datetime]] = []
            for event in events:
                try:
                    beacon = read_beacon(event.value)
                except PoisonMessage as exc:
                    await dead_letters.send(event, exc)
                    continue
                key = str(beacon.event_id)
                at = beacon.received_at.timestamp()
                live = state.event(key, event.message.partition)
                live.viewers.apply(beacon.viewer_id, beacon.action, beacon.mode, at, now)
                touched.add(key)
                minute = minute_of(at)
                if state.first_in_minute(key, beacon.viewer_id, beacon.mode, minute):
                    minutes.append((beacon.event_id, beacon.viewer_id, beacon.mode, minute))
                if beacon.mode == "replay" and beacon.position_s is not None:
                    shown = recording_minute(beacon.position_s)
                    recording.append((beacon.event_id, beacon.viewer_id, shown, beacon.received_at))
            for key in touched:
                live = state.events[key]
                state.observe(live, now)
                write_table(key, live, now)
            await write_read_model(minutes, touched, recording)

    def write_table(key: str, live: EventLive, now: float) -> None:
        """The one aggregate table write per event per batch (or per expiry that changed it)."""
        table[key.encode()] = {
            "viewers": live.viewers.count(),
            "peak": live.peak.viewers,
            "peak_at": live.peak.at,
            "counted_through": live.viewers.newest_at,
            "at": now,
        }
        live.written_count = live.viewers.count()

    async def write_read_model(
        minutes: list[tuple[uuid.UUID, str, str, int]],
        keys: set[str],
        recording: list[tuple[uuid.UUID, str, int, datetime]] | None = None,
    ) -> None:
        rows = [live_row(key) for key in keys if key in state.events]
        minute_rows: list[tuple[uuid.UUID, int, int]] = []
        for key in keys:
            live = state.events.get(key)
            if live is None:
                continue
            minute_rows.extend((uuid.UUID(key), m, n) for m, n in live.minute_max.items())
        # Not acked until written: wait for PostgreSQL rather than lose minutes.
        await until_written(
            "read model",
            lambda: writer.save_viewing(minutes, rows, minute_rows, recording or []),
        )
        current = minute_of(time.time())
        for key in keys:
            live = state.events.get(key)
            if live is not None:
                live.minute_max = {m: n for m, n in live.minute_max.items() if m >= current}

    def live_row(key: str) -> repository.LiveRow:
        live = state.events[key]
        newest = live.viewers.newest_at
        return repository.LiveRow(
            event_id=uuid.UUID(key),
            viewers=live.viewers.count(),
            peak=live.peak.viewers,
            peak_at=datetime.fromtimestamp(live.peak.at, UTC) if live.peak.at else None,
            by_region=live.by_region,
            by_role=live.by_role,
            counted_through=datetime.fromtimestamp(newest, UTC) if newest else None,
        )

    @app.timer(interval=settings.expiry_interval_s)
    async def expire_viewers() -> None:
        """Viewers who stopped beaconing stop counting; the count is rewritten if it moved."""
        now = time.time()
        changed: set[str] = set()
        for key, live in list(state.events.items()):
            live.viewers.expire(now)
            if live.viewers.count() == 0 and now - live.viewers.newest_at > 3600:
                del state.events[key]  # quiet for an hour: its peak is in the table already
                continue
            state.observe(live, now)
            profiles = shared.profiles_by_viewer(key)
            before = (live.by_region, live.by_role)
            if profiles:
                live.by_region, live.by_role = breakdown(live.viewers.live_viewer_ids(), profiles)
            else:  # nobody registered (or no join links used): every live viewer is anonymous
                count = live.viewers.count()
                live.by_region = live.by_role = {UNKNOWN: count} if count else {}
            if live.viewers.count() != live.written_count:
                write_table(key, live, now)
                changed.add(key)
            elif (live.by_region, live.by_role) != before:
                changed.add(key)
        if changed:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await write_read_model([], changed)

    async def on_revoked(_app: faust.App, revoked: set[TopicPartition], **_kwargs: Any) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == VIEWER_ACTIVITY.name}
        state.forget_partitions(lost)
        owned.difference_update(lost)

    async def on_assigned(_app: faust.App, assigned: set[TopicPartition], **_kwargs: Any) -> None:
        gained = {
            tp.partition
            for tp in assigned
            if tp.topic == VIEWER_ACTIVITY.name and tp.partition not in owned
        }
        owned.update(tp.partition for tp in assigned if tp.topic == VIEWER_ACTIVITY.name)
        if gained:
            task = asyncio.ensure_future(rebuild(gained))
            shared.background.add(task)
            task.add_done_callback(shared.background.discard)

    signals: Any = app
    signals.on_partitions_revoked.connect(on_revoked)
    signals.on_partitions_assigned.connect(on_assigned)

    async def rebuild(partitions: set[int]) -> None:
        """Re-read the last live timeout of beacons and merge them (newest wins)."""
        started = time.monotonic()
        try:
            merged = await reread_recent(settings, partitions, state)
        except (KafkaError, OSError) as exc:
            log.warning("live viewers not rebuilt for partitions %s: %r", partitions, exc)
            return
        log.info(
            "live viewers rebuilt",
            extra={
                "ctx_partitions": sorted(partitions),
                "ctx_beacons": merged,
                "ctx_seconds": round(time.monotonic() - started, 2),
            },
        )

    return state


def read_beacon(value: bytes | None) -> ViewerBeacon:
    """The current beacon version parsed in one step (the hot path); anything else through the
    codec, which upcasts older versions and explains what is wrong with the rest (an oversized
    value too: JSON padded past the codec's limit would otherwise parse here)."""
    if value is not None and len(value) <= MAX_MESSAGE_BYTES:
        with contextlib.suppress(ValueError):
            return ViewerBeacon.model_validate_json(value)
    message = decode(value)
    if not isinstance(message, ViewerBeacon):
        raise UndecodableMessage(f"{message.type} is not a viewer beacon")
    return message


async def reread_recent(settings: AnalyticsSettings, partitions: set[int], state: LiveState) -> int:
    """Read each partition from ``now - live timeout`` up to its end; return beacons merged."""
    consumer = create_consumer(settings.kafka, None)
    await consumer.start()
    merged = 0
    try:
        tps = [TopicPartition(VIEWER_ACTIVITY.name, p) for p in sorted(partitions)]
        consumer.assign(tps)
        since_ms = int((time.time() - settings.live_timeout_s - 1) * 1000)
        offsets = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        pending: set[TopicPartition] = set()
        for tp, found in offsets.items():
            if found is not None:
                consumer.seek(tp, found.offset)
                pending.add(tp)
        if not pending:
            return 0
        consumer.pause(*[tp for tp in tps if tp not in pending])
        deadline = time.monotonic() + 30.0
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.time()
            for tp, records in batches.items():
                for record in records:
                    try:
                        beacon = read_beacon(record.value)
                    except PoisonMessage:
                        continue
                    live = state.event(str(beacon.event_id), tp.partition)
                    live.viewers.apply(
                        beacon.viewer_id,
                        beacon.action,
                        beacon.mode,
                        beacon.received_at.timestamp(),
                        now,
                    )
                    merged += 1
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return merged
    finally:
        await consumer.stop()
