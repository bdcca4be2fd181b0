"""The viewer beacons' real parts: a status cache and a long-lived Kafka producer.

Beacons are the one thing this service sends to Kafka without the outbox: a beacon is not a
business fact PostgreSQL must keep, the endpoint must answer within milliseconds at thousands
per second, and a player retries on 503. So no PostgreSQL work happens per beacon:

- ``EventStatusCache`` holds every non-draft event's status in memory, reloaded every second
  (one small query), and is told at once about changes this process commits.
- ``BeaconPublisher`` owns one producer (``acks="all"``) for the life of the process and
  batches beacons itself, per partition, sending every ~75 ms. ``publish`` only appends to a
  batch and returns: the endpoint answers 204 without waiting for the broker. Acknowledgements
  are tracked instead: when a batch fails, or nothing has been acknowledged for
  ``ack_timeout_s`` while batches wait, or too many wait,
  the broker counts as unavailable and the endpoint answers 503 (players retry) until a
  metadata probe reaches the broker again. Beacons accepted in the few seconds before an outage
  is noticed may be lost: that is the price of answering at once, and harmless for heartbeats
  that come again every 30 s (live counts expire viewers who fall silent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from sto_events.domain import Event
from stolive_shared.contracts.codec import encode
from stolive_shared.contracts.events import EventStatus
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.retry import Backoff
from stolive_shared.settings import KafkaSettings

log = logging.getLogger(__name__)

_RELOAD_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, TimeoutError)


class BrokerUnavailable(Exception):
    """Kafka cannot take beacons right now; the player should retry (HTTP 503)."""


class EventStatusCache:
    """Event id -> status, reloaded every ``interval_s``; ``note`` applies a change at once."""

    def __init__(
        self,
        load: Callable[[], Awaitable[dict[uuid.UUID, EventStatus]]],
        interval_s: float = 1.0,
    ) -> None:
        self._load = load
        self.interval_s = interval_s
        self._statuses: dict[uuid.UUID, EventStatus] = {}
        self._noted: dict[uuid.UUID, tuple[float, EventStatus]] = {}
        self.loaded = False

    def status(self, event_id: uuid.UUID) -> EventStatus | None:
        return self._statuses.get(event_id)

    def note(self, event: Event) -> None:
        """A change this process just committed: visible to beacons before the next reload."""
        self._noted[event.id] = (time.monotonic(), event.status)
        self._statuses[event.id] = event.status

    async def refresh(self) -> None:
        started = time.monotonic()
        statuses = await self._load()
        # A change noted while the query ran may be newer than what the query saw.
        for event_id, (noted_at, status) in list(self._noted.items()):
            if noted_at >= started:
                statuses[event_id] = status
            elif started - noted_at > 10 * self.interval_s:
                del self._noted[event_id]
        self._statuses = statuses
        self.loaded = True

    async def run(self, on_tick: Callable[[], object] = lambda: None) -> None:
        while True:
            try:
                await self.refresh()
            except _RELOAD_ERRORS as exc:
                log.warning("event statuses not reloaded (keeping the last ones): %r", exc)
            except Exception:
                # Never let the loop die: stale statuses for a while beat frozen ones forever.
                log.exception("event statuses not reloaded (keeping the last ones)")
            on_tick()
            await asyncio.sleep(self.interval_s)


class BeaconPublisher:
    """One long-lived producer for beacons, our own batching, and whether the broker takes them.

    Beacons are appended to one open batch per partition (the partition the producer would pick
    for the event id) and a flusher hands the batches to the producer every ``linger_ms``: a
    tenth of the cost of ``send`` per record, which matters at thousands of beacons a second.

    At most ``max_pending`` beacons may be accepted and not yet acknowledged. Beyond that the
    broker is not keeping up and the endpoint answers 503: back-pressure to the players instead
    of a backlog that a restart would lose.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        linger_ms: int = 75,
        ack_timeout_s: float = 5.0,
        max_pending: int = 20_000,
    ) -> None:
        self._kafka = kafka
        self._linger_s = linger_ms / 1000
        self.ack_timeout_s = ack_timeout_s
        self.max_pending = max_pending
        self._producer: AIOKafkaProducer | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._partitions: list[int] = []
        self._partition_of: dict[bytes, int] = {}
        self._open: dict[int, BatchBuilder] = {}
        self._full: list[tuple[int, BatchBuilder]] = []
        self._pending = 0  # accepted, not yet acknowledged (or lost)
        self._wake = asyncio.Event()
        self._in_flight = 0  # batches handed to the producer, not yet settled
        self._waiting_since: float | None = None
        self._failed = False
        self.sent = 0
        self.acknowledged = 0
        self.failed = 0

    @property
    def available(self) -> bool:
        if self._producer is None or self._failed or self._closing:
            return False
        if self._pending >= self.max_pending:
            return False
        waiting = self._waiting_since
        return waiting is None or time.monotonic() - waiting < self.ack_timeout_s

    async def publish(self, beacons: list[ViewerBeacon]) -> None:
        """Add the beacons to the open batches; raises ``BrokerUnavailable``.

        Never waits for the broker: the flusher sends the batches.
        """
        producer = self._producer
        if producer is None or not self.available:
            raise BrokerUnavailable("Kafka neemt nu geen kijkmeldingen aan")
        for beacon in beacons:
            value, headers = encode(beacon)
            key = beacon.partition_key().encode()
            partition = self._partition_of.get(key)
            if partition is None:
                partition = self._partition_for(key)
            batch = self._open.get(partition)
            if batch is None:
                batch = self._open[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                self._full.append((partition, batch))
                self._wake.set()
                batch = self._open[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        self._pending += len(beacons)
        self.sent += len(beacons)

    def _partition_for(self, key: bytes) -> int:
        """What the producer's default partitioner picks, remembered per event id."""
        if len(self._partition_of) > 100_000:
            self._partition_of.clear()
        partition: int = DefaultPartitioner()(key, self._partitions, self._partitions)
        self._partition_of[key] = partition
        return partition

    async def _flush(self) -> None:
        """Hand every batch to the producer; none is dropped if this is interrupted."""
        producer = self._producer
        assert producer is not None
        self._full.extend(self._open.items())
        self._open = {}
        while self._full:
            partition, batch = self._full[0]
            count = batch.record_count()
            batch.close()
            try:
                future = await producer.send_batch(batch, VIEWER_ACTIVITY.name, partition=partition)
            except (KafkaError, AssertionError) as exc:
                # AssertionError: aiokafka's "Unrecognized partition", when a broker that lost
                # its topics briefly has the topic with fewer partitions (see BROKER.md).
                self._full.pop(0)
                self._lost(count, exc)
                continue
            self._full.pop(0)
            self._track(future, count)

    def _track(self, future: asyncio.Future[Any], count: int) -> None:
        if self._in_flight == 0:
            self._waiting_since = time.monotonic()
        self._in_flight += 1
        future.add_done_callback(lambda done: self._settled(done, count))

    def _settled(self, future: asyncio.Future[Any], count: int) -> None:
        self._in_flight -= 1
        if future.cancelled() or future.exception() is not None:
            self._lost(count, future.exception())
        else:
            self._pending -= count
            self.acknowledged += count
            self._failed = False
        self._waiting_since = time.monotonic() if self._in_flight else None

    def _lost(self, count: int, exc: BaseException | None) -> None:
        self._pending -= count
        self.failed += count
        if not self._failed:
            log.warning("%d beacon(s) not acknowledged: %r", count, exc)
        self._failed = True

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="beacon-producer")

    async def _run(self) -> None:
        """Start the producer (retrying while the broker is away), then flush and watch."""
        backoff = Backoff()
        while self._producer is None and not self._closing:
            producer = create_producer(self._kafka, max_batch_size=256 * 1024)
            try:
                await producer.start()
                self._partitions = sorted(await producer.partitions_for(VIEWER_ACTIVITY.name))
            except (KafkaError, OSError) as exc:
                with contextlib.suppress(KafkaError, OSError):
                    await producer.stop()
                await backoff.wait("beacon producer not started", exc)
                continue
            self._producer = producer
            log.info("beacon producer started")
        next_probe = time.monotonic()
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._linger_s)
            self._wake.clear()
            try:
                await self._flush()
                if self._failed and self._in_flight == 0 and time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + 0.5
                    await self._probe()
            except Exception:
                # The flusher must outlive any surprise, or beacons would pile up unsent
                # while the endpoint kept answering 204: say so, refuse beacons, go on.
                log.exception("beacon flush failed")
                self._failed = True

    async def _probe(self) -> None:
        """After a failure: the broker answers a metadata request again, so try sending."""
        assert self._producer is not None
        with contextlib.suppress(KafkaError, OSError):
            if await self._producer.client.force_metadata_update():
                log.info("the broker answers again: accepting beacons")
                self._failed = False

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Refuse new beacons, send every accepted one and wait for the acknowledgements.

        Gives up after ``timeout_s`` in all (a broker that is away cannot take them).
        """
        self._closing = True
        self._wake.set()
        runner = self._runner
        if runner is not None and self._producer is None:
            runner.cancel()  # still waiting for a broker: nothing was accepted
        try:
            async with asyncio.timeout(timeout_s):
                if runner is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner
                if self._producer is not None:
                    await self._flush()
                    await self._producer.flush()
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("%d accepted beacon(s) may not have reached Kafka: %r", self._pending, exc)
        finally:
            if runner is not None:
                runner.cancel()
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._producer.stop()
            self._producer = None

    def stats(self) -> dict[str, object]:
        return {
            "available": self.available,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "pending": self._pending,
            "batches_in_flight": self._in_flight,
        }
