"""Live counting at scale: one Faust analytics worker under 100,000 simulated viewers.

Real parts: the embedded broker with every topic, a fresh PostgreSQL database with the
analytics schema, one ``python -m sto_analytics worker`` process, and the load generator as
its own process (``python -m bench.analytics produce ...``): 100,000 viewers over 4 events,
each sending a heartbeat every 30 s (3,400 beacons/s), produced in ~100 ms batches like the
events service does.

Measured:
- **live**: the offered 3,400 beacons/s for ``seconds``; beacons/s the worker counted in that
  window, and the *freshness* of the live count: from a beacon's production (its record
  timestamp) to the first ``live_viewers`` table write (changelog record timestamp) whose
  ``counted_through`` covers it; p50/p99 over every beacon.
- **drain**: a backlog of 60,000 beacons produced at once; beacons/s until all are counted.
  This is the figure: what one worker processes when it is the bottleneck.
- **ceiling**, same run, same topic: a bare aiokafka consumer reading every record of the
  viewer-activity topic from the beginning (no decoding, no state).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import free_port, fresh_database
from bench.result import BenchResult

VIEWERS = 100_000
EVENTS = 4
HEARTBEAT_S = 30.0
BACKLOG = 60_000
CHANGELOG = "sto-analytics-live_viewers-changelog"


def _beacon(event_id: str, viewer: str, action: str, now: datetime) -> bytes:
    """A ``viewer.beacon`` v1 value, written directly (the generator must not be the limit)."""
    at = now.isoformat()
    return (
        f'{{"message_id":"{uuid.uuid4()}","type":"viewer.beacon","version":1,'
        f'"occurred_at":"{at}","event_id":"{event_id}","viewer_id":"{viewer}",'
        f'"action":"{action}","mode":"live","client_ts":"{at}","received_at":"{at}"}}'
    ).encode()


async def produce(args: argparse.Namespace) -> None:
    """The load generator (own process): ``--rate`` beacons/s, or ``--burst`` at once."""
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", linger_ms=100, max_batch_size=262_144
    )
    await producer.start()
    events: list[str] = json.loads(args.events)
    topic = "sto.viewer-activity"
    sent = 0
    last: dict[str, float] = {}
    try:
        if args.burst:
            pending = []
            for n in range(args.burst):
                event_id = events[n % len(events)]
                now = datetime.now(UTC)
                last[event_id] = now.timestamp()
                value = _beacon(event_id, f"b_{n}", "join", now)
                pending.append(await producer.send(topic, value, key=event_id.encode()))
            await asyncio.gather(*pending)
            sent = args.burst
        else:
            started = time.monotonic()
            tick = 0.1
            per_viewer_s = HEARTBEAT_S / args.viewers
            seen: set[int] = set()
            while (elapsed := time.monotonic() - started) < args.seconds:
                due = int(elapsed / per_viewer_s)
                now = datetime.now(UTC)
                pending = []
                while sent < due:
                    viewer = sent % args.viewers
                    event_id = events[viewer % len(events)]
                    action = "heartbeat" if viewer in seen else "join"
                    seen.add(viewer)
                    value = _beacon(event_id, f"v_{viewer}", action, now)
                    pending.append(await producer.send(topic, value, key=event_id.encode()))
                    sent += 1
                await asyncio.gather(*pending)
                await asyncio.sleep(max(0.0, tick - (time.monotonic() - started - elapsed)))
    finally:
        await producer.stop()
    sys.stdout.write(json.dumps({"sent": sent, "last": last}) + "\n")


async def _generator(bootstrap: str, events: list[str], **options: Any) -> dict[str, Any]:
    args = ["--bootstrap", bootstrap, "--events", json.dumps(events)]
    for name, value in options.items():
        args += [f"--{name}", str(value)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.analytics", "produce", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


class ChangelogWatch:
    """Reads the live_viewers changelog: per event, (counted_through, written at) in order."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.writes: dict[str, list[tuple[float, float]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChangelogWatch:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        tps = [TopicPartition(CHANGELOG, p) for p in range(8)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._read(consumer))
        return self

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        if record.key is None or record.value is None:
                            continue
                        value = json.loads(record.value)
                        self.writes.setdefault(record.key.decode(), []).append(
                            (float(value["counted_through"]), record.timestamp / 1000)
                        )
        finally:
            await consumer.stop()

    def counted_through(self, event_id: str) -> float:
        writes = self.writes.get(event_id)
        return writes[-1][0] if writes else 0.0

    def counted_at(self, event_id: str, received_at: float) -> float | None:
        """When the first table write covering a beacon received at ``received_at`` happened."""
        for through, written_at in self.writes.get(event_id, ()):
            if through >= received_at:
                return written_at
        return None

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _read_all(bootstrap: str, topic: str) -> tuple[list[Any], float]:
    """The ceiling: a bare consumer reading the whole topic; records and seconds taken."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4_194_304,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(8)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        started = time.perf_counter()
        last_data = started
        while time.perf_counter() - last_data < 1.0:
            batches = await consumer.getmany(timeout_ms=100, max_records=50_000)
            for items in batches.values():
                records.extend(items)
            if batches:
                last_data = time.perf_counter()
        return records, last_data - started
    finally:
        await consumer.stop()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def _worker(bootstrap: str, database_url: str, data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "DATABASE_URL": database_url,
        "WORKER_NAME": "analytics-bench",
        "FAUST_DATA_DIR": str(data_dir / "faust"),
        "LOG_LEVEL": "WARNING",
    }
    with open(data_dir / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sto_analytics", "worker"], env=env, stdout=log, stderr=log
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_counting(bootstrap: str, watch: ChangelogWatch) -> None:
    probe = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await producer.send_and_wait(
                "sto.viewer-activity",
                _beacon(probe, "probe", "join", datetime.now(UTC)),
                key=probe.encode(),
            )
            await asyncio.sleep(1.0)
            if watch.counted_through(probe):
                return
        raise RuntimeError("the analytics worker did not start counting within 90 s")
    finally:
        await producer.stop()


async def run(seconds: float) -> BenchResult:
    from sto_analytics.bootstrap import DEFINITION
    from stolive.broker import EmbeddedBroker
    from stolive_shared.contracts.topics import ALL_TOPICS
    from stolive_shared.db import apply_migrations
    from stolive_shared.messaging.topics_admin import ensure_topics
    from stolive_shared.settings import KafkaSettings

    broker = EmbeddedBroker(free_port())
    await broker.start()
    bootstrap = broker.bootstrap_servers
    try:
        await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), ALL_TOPICS)
        async with fresh_database() as database_url:
            await apply_migrations(database_url, "analytics", [DEFINITION.migrations])
            with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
                async with ChangelogWatch(bootstrap) as watch:
                    with _worker(bootstrap, database_url, Path(tmp)):
                        await _wait_counting(bootstrap, watch)
                        return await _measure(bootstrap, watch, seconds)
    finally:
        await broker.stop()


async def _measure(bootstrap: str, watch: ChangelogWatch, seconds: float) -> BenchResult:
    live_events = [str(uuid.uuid4()) for _ in range(EVENTS)]
    started = time.time()
    produced = await _generator(bootstrap, live_events, seconds=seconds, viewers=VIEWERS)
    offered = produced["sent"] / (time.time() - started)
    await asyncio.sleep(3.0)

    backlog_events = [str(uuid.uuid4()) for _ in range(EVENTS)]
    burst = await _generator(bootstrap, backlog_events, burst=BACKLOG)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(watch.counted_through(e) >= burst["last"][e] for e in backlog_events):
            break
        await asyncio.sleep(0.05)
    last_counted = max(w for e in backlog_events for _t, w in watch.writes.get(e, [(0, 0)]))

    records, read_s = await _read_all(bootstrap, "sto.viewer-activity")
    ceiling = len(records) / read_s
    # From the first backlog beacon's production to the table write that covered the last.
    drain_started = min(
        r.timestamp / 1000 for r in records if r.key and r.key.decode() in backlog_events
    )
    drain_rate = BACKLOG / max(last_counted - drain_started, 1e-6)

    freshness: list[float] = []
    uncounted = 0
    counted_in_window = 0
    for record in records:
        key = record.key.decode() if record.key else ""
        if key not in live_events:
            continue
        value = json.loads(record.value)
        received = datetime.fromisoformat(value["received_at"]).timestamp()
        counted_at = watch.counted_at(key, received)
        if counted_at is None:
            uncounted += 1
            continue
        freshness.append(max(0.0, counted_at - record.timestamp / 1000))
        if counted_at <= started + seconds + 0.5:
            counted_in_window += 1
    p50, p99 = _percentile(freshness, 0.50) * 1000, _percentile(freshness, 0.99) * 1000
    live_rate = counted_in_window / seconds
    keeps_up = uncounted == 0 and p99 < 2000 and live_rate >= 0.95 * offered
    return BenchResult(
        name="analytics",
        figure=drain_rate,
        unit="beacons/s (one worker)",
        ceiling=ceiling,
        details={
            "workload": f"{VIEWERS:,} viewers, {EVENTS} events, heartbeat {HEARTBEAT_S:.0f} s",
            "live offered": f"{offered:,.0f} beacons/s for {seconds:.0f} s",
            "live counted": f"{live_rate:,.0f} beacons/s ({len(freshness):,} counted, "
            f"{uncounted} never counted)",
            "freshness produced->counted": f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
            "drain": f"{BACKLOG:,} backlog beacons at {drain_rate:,.0f} beacons/s",
            "machine": f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(shared with other work)",
            "ceiling": f"bare aiokafka consumer read {len(records):,} records at "
            f"{ceiling:,.0f} records/s",
            "target (3,400 beacons/s, p99 < 2 s)": "met" if keeps_up else "NOT met",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics")
    parser.add_argument("mode", choices=["produce"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--viewers", type=int, default=VIEWERS)
    parser.add_argument("--burst", type=int, default=0)
    asyncio.run(produce(parser.parse_args()))


if __name__ == "__main__":
    main()
