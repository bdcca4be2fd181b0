"""Viewer beacons: the events API's ``POST /api/beacons`` against the bare FastAPI ceiling.

Real parts: a fresh PostgreSQL database with one live STO LIVE broadcast, the embedded broker
with every topic, and the events service started as its own process (``python -m sto_events
api``, as ``make up`` runs it). The load generator is another process on loopback. Runs:

1. closed loop, one beacon per request, 50 connections: accepted beacons/s (the figure);
2. open loop at 2,000 beacons/s: p50/p99 latency at the programme's expected peak;
3. closed loop, batches of 20 beacons per request: beacons/s when players batch;
4. the bare FastAPI endpoint doing nothing, same load generator, same run (the ceiling),
   before and after the rest, averaged: other work on the machine moves both; and the bare
   endpoint at 2,000/s open loop, to show the p99 the machine itself gives at that rate.

Every viewer id is fresh (``{n}``), so the 5 s per-viewer throttle does not drop anything.
When Kafka falls behind, the endpoint answers 503 (at most 20,000 beacons wait for an
acknowledgement); the load generator counts those apart. Afterwards every record on
``sto.viewer-activity`` is counted: accepted must equal acknowledged must equal on the topic.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import (
    ceiling,
    free_port,
    fresh_database,
    load,
    server_process,
    uvicorn_args,
    wait_http,
)
from bench.result import BenchResult
from sto_events.bootstrap import DEFINITION
from sto_events.domain import Event
from sto_events.repository.postgres import postgres_store
from sto_events.service import EventsService
from stolive.broker import EmbeddedBroker
from stolive_shared.contracts.topics import ALL_TOPICS, VIEWER_ACTIVITY
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.settings import KafkaSettings

CONNECTIONS = 50
OPEN_LOOP_RATE = 2_000.0
BATCH = 20


async def _live_event(database_url: str) -> uuid.UUID:
    await apply_migrations(database_url, "events", [DEFINITION.migrations])
    pool = await create_pool(database_url, "events", max_size=2)
    try:
        service = EventsService(postgres_store(pool, "events"))
        starts = datetime.now(UTC) + timedelta(hours=1)
        event = await service.create_event(
            Event(
                id=uuid.uuid4(),
                kind="webinar",
                title="STO LIVE benchmark",
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
            )
        )
        await service.publish(event.id)
        await service.go_live(event.id)
        return event.id
    finally:
        await pool.close()


async def _wait_beacons_ready(url: str, timeout_s: float = 60.0) -> None:
    """The API answers and its producer is connected (``/readyz`` reports it)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                body = (await client.get(f"{url}/readyz")).json()
                if body.get("beacons", {}).get("available") and body.get("event_statuses_loaded"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the events API at {url} did not get ready for beacons")


async def _settled_producer(url: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The producer's figures once every accepted beacon is acknowledged (or lost)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            stats: dict[str, Any] = (await client.get(f"{url}/readyz")).json()["beacons"]
            if stats["pending"] == 0 or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.2)


def _beacon(event_id: uuid.UUID, viewer: str) -> str:
    return json.dumps(
        {
            "event_id": str(event_id),
            "viewer_id": viewer,
            "action": "heartbeat",
            "mode": "live",
            "client_ts": datetime.now(UTC).isoformat(),
        }
    )


async def _count_on_topic(kafka: KafkaSettings) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(VIEWER_ACTIVITY.name, p) for p in range(VIEWER_ACTIVITY.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        count, quiet_since = 0, time.monotonic()
        while time.monotonic() - quiet_since < 2.0:
            batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
            got = sum(len(records) for records in batch.values())
            if got:
                count += got
                quiet_since = time.monotonic()
        return count
    finally:
        await consumer.stop()


async def _bare_open_loop(seconds: float) -> dict[str, Any]:
    """The bare endpoint at the same open-loop rate: what the machine alone does to p99."""
    port = free_port()
    with server_process(uvicorn_args("bench.ceilings:bare_app", port), port) as server:
        await wait_http(f"{server.url}/ready")
        return await load(
            f"{server.url}/post",
            seconds=seconds,
            connections=CONNECTIONS,
            body='{"name": "Anna"}',
            rate=OPEN_LOOP_RATE,
        )


def _accepted(result: dict[str, Any], per_request: int = 1) -> int:
    return int(result["statuses"].get("204", 0)) * per_request


async def run(seconds: float) -> BenchResult:
    # The machine is shared: the ceiling is measured before and after, and averaged.
    bare_before = await ceiling("bare", seconds, CONNECTIONS)
    async with fresh_database() as database_url:
        broker = EmbeddedBroker(free_port())
        await broker.start()
        try:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
            await ensure_topics(kafka, ALL_TOPICS)
            event_id = await _live_event(database_url)
            port = free_port()
            env = {
                "DATABASE_URL": database_url,
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "HTTP_PORT": str(port),
                "LOG_LEVEL": "WARNING",
            }
            with server_process(["-m", "sto_events", "api"], port, env) as server:
                await _wait_beacons_ready(server.url)
                url = f"{server.url}/api/beacons"
                # Each run gets its own viewer ids: the generator's {n} restarts at 1 per run.
                await load(
                    url, seconds=1.0, connections=CONNECTIONS, body=_beacon(event_id, "w{n}")
                )
                closed = await load(
                    url, seconds=seconds, connections=CONNECTIONS, body=_beacon(event_id, "c{n}")
                )
                paced = await load(
                    url,
                    seconds=seconds,
                    connections=CONNECTIONS,
                    body=_beacon(event_id, "p{n}"),
                    rate=OPEN_LOOP_RATE,
                )
                batch = ",".join(_beacon(event_id, f"b{i}-{{n}}") for i in range(BATCH))
                batched = await load(
                    url, seconds=seconds, connections=CONNECTIONS, body=f"[{batch}]"
                )
                producer = await _settled_producer(server.url)
            on_kafka = await _count_on_topic(kafka)
        finally:
            await broker.stop()
    bare_after = await ceiling("bare", seconds, CONNECTIONS)
    bare_paced = await _bare_open_loop(seconds)
    bare_per_s = (bare_before["ok_per_s"] + bare_after["ok_per_s"]) / 2
    accepted = _accepted(closed) + _accepted(paced) + _accepted(batched, BATCH)
    return BenchResult(
        name="beacons",
        figure=closed["ok_per_s"],
        unit="beacons/s, 1 per request",
        ceiling=bare_per_s,
        details={
            "closed loop (50 connections)": _summary(closed),
            f"open loop at {OPEN_LOOP_RATE:,.0f}/s": _summary(paced),
            f"batches of {BATCH}": f"{batched['ok_per_s'] * BATCH:,.0f} beacons/s "
            f"({_summary(batched)})",
            "bare FastAPI ceiling, before": _summary(bare_before),
            "bare FastAPI ceiling, after": _summary(bare_after),
            f"bare FastAPI, open loop at {OPEN_LOOP_RATE:,.0f}/s": _summary(bare_paced),
            "beacons accepted in the measured runs": f"{accepted:,}",
            "producer (incl. warm-up)": f"accepted {producer['sent']:,}, acknowledged "
            f"{producer['acknowledged']:,}, failed {producer['failed']:,}, "
            f"still pending {producer['pending']:,}",
            "records on sto.viewer-activity (incl. warm-up)": f"{on_kafka:,}",
        },
    )


def _summary(result: dict[str, Any]) -> str:
    return (
        f"{result['ok_per_s']:,.0f} ok/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, statuses {result['statuses']}, errors {result['errors']}"
    )
