"""The whole platform with two analytics workers and short clocks: real beacons through the
events service's endpoint, figures read back over HTTP through the gateway, a worker killed
with SIGKILL (the launcher restarts it), totals compared with a recount from the topic.

Short settings stand in for long waits: a viewer stops counting 4 s after their last beacon
(``LIVE_TIMEOUT_S``), and a viewer may beacon every 0.5 s (``BEACON_MIN_INTERVAL_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sto_analytics.domain import LiveViewers, minute_of, watch_figures
from stolive.broker import free_port
from stolive.stack import Stack
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.settings import KafkaSettings
from tests.e2e.conftest import stack_config
from tests.support import eventually, read_topic, start_smtp_sink

LIVE_TIMEOUT_S = 4.0


@pytest.fixture(scope="module")
async def stack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    smtp_port = free_port()
    _sink, controller = start_smtp_sink(smtp_port)
    config = stack_config(
        tmp_path_factory.mktemp("stack"),
        database_url,
        smtp_port,
        analytics_workers=2,
        extra_env={
            "LOG_LEVEL": "INFO",
            "LIVE_TIMEOUT_S": str(LIVE_TIMEOUT_S),
            "EXPIRY_INTERVAL_S": "0.5",
            "BEACON_MIN_INTERVAL_S": "0.5",
        },
    )
    platform = Stack(config)
    try:
        await platform.start()
        yield platform
    finally:
        await platform.stop()
        controller.stop()


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.config.public_base_url,
        headers={"Authorization": f"Bearer {stack.organiser_token}"},
        timeout=15,
    ) as client:
        yield client


async def live_event(gateway: httpx.AsyncClient) -> str:
    starts = datetime.now(UTC) + timedelta(days=1)
    created = await gateway.post(
        "/events/api/events",
        json={
            "kind": "webinar",
            "title": f"STO LIVE #{uuid.uuid4().int % 1000}",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(minutes=30)).isoformat(),
            "stream_url": "https://live.sterktechniekonderwijs.nl/demo",
        },
    )
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    assert (await gateway.post(f"/events/api/events/{event_id}/publish")).status_code == 200
    assert (await gateway.post(f"/events/api/events/{event_id}/go-live")).status_code == 200
    return event_id


async def send(gateway: httpx.AsyncClient, event_id: str, viewers: list[str], action: str) -> int:
    answer = await gateway.post(
        "/events/api/beacons",
        json=[
            {
                "event_id": event_id,
                "viewer_id": viewer,
                "action": action,
                "mode": "live",
                "client_ts": datetime.now(UTC).isoformat(),
            }
            for viewer in viewers
        ],
    )
    return answer.status_code


async def figures_of(gateway: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    answer = await gateway.get(f"/analytics/api/events/{event_id}/figures")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def recount(kafka: KafkaSettings, event_id: str) -> tuple[dict[str, int], int]:
    """Watch figures and the live count now, by the domain rules, from the topic's records."""
    minutes: dict[tuple[str, str], set[int]] = {}
    live = LiveViewers(LIVE_TIMEOUT_S)
    now = datetime.now(UTC).timestamp()
    for record in await read_topic(kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions):
        with contextlib.suppress(Exception):
            beacon = decode(record.value)
            if isinstance(beacon, ViewerBeacon) and str(beacon.event_id) == event_id:
                key = (beacon.viewer_id, beacon.mode)
                minutes.setdefault(key, set()).add(minute_of(beacon.received_at))
                at = beacon.received_at.timestamp()
                live.apply(beacon.viewer_id, beacon.action, beacon.mode, at, now)
    live.expire(now)
    counted = watch_figures(minutes)
    return {
        "views_live": counted.views_live,
        "unique_viewers": counted.unique_viewers,
        "watch_minutes_live": counted.watch_minutes_live,
    }, live.count()


async def test_two_workers_count_real_beacons_expire_them_and_survive_a_sigkill(
    stack: Stack, gateway: httpx.AsyncClient, figures: Callable[[str], None]
) -> None:
    kafka = KafkaSettings(bootstrap_servers=stack.bootstrap_servers)
    event_id = await live_event(gateway)
    viewers = [f"kijker_{n}" for n in range(20)]  # anonymous viewers
    await eventually(
        lambda: _equals(send(gateway, event_id, viewers, "join"), 204),
        what="the beacon endpoint to take live beacons",
    )
    await asyncio.sleep(0.6)
    assert await send(gateway, event_id, viewers, "join") == 204  # the same joins again

    # Heartbeats every second until the (freshly started) workers show all 20, never more.
    async def twenty() -> dict[str, Any] | None:
        await asyncio.sleep(0.6)
        assert await send(gateway, event_id, viewers, "heartbeat") == 204
        body = await figures_of(gateway, event_id)
        assert body["live"]["viewers"] <= 20
        return body if body["live"]["viewers"] == 20 else None

    body = await eventually(twenty, what="20 live viewers", timeout_s=60)
    assert body["unique_viewers"] == 20

    # No leave, no heartbeat: everybody stops counting after the live timeout.
    await eventually(
        lambda: _when(figures_of(gateway, event_id), lambda b: b["live"]["viewers"] == 0),
        what="the joins to expire",
        timeout_s=20,
    )

    worker = next(p for p in stack.processes if p.name == "analytics-worker-1")
    worker.kill()
    later = [f"w_{n}" for n in range(10)]
    assert await send(gateway, event_id, later, "join") == 204
    await eventually(worker.is_running, what="the launcher to restart the killed worker")

    async def agrees() -> bool:
        expected, live_now = await recount(kafka, event_id)
        body = await figures_of(gateway, event_id)
        counted = {key: body[key] for key in expected}
        return counted == expected and body["live"]["viewers"] == live_now

    await eventually(agrees, what="figures equal to a recount after SIGKILL", timeout_s=60)
    final = await figures_of(gateway, event_id)
    assert final["unique_viewers"] == 30
    assert final["live"]["peak"] >= 20
    figures(
        f"analytics e2e, 2 workers: 20 joins sent twice -> 20 live, expired to 0 after "
        f"{LIVE_TIMEOUT_S:.0f}s; worker SIGKILLed during 10 more joins -> totals equal a recount "
        f"({final['views_live']} views, {final['unique_viewers']} unique)"
    )


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def _when(value: Any, condition: Callable[[Any], bool]) -> Any:
    found = await value
    return found if condition(found) else None
