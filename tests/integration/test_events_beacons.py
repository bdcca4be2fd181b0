"""The viewer beacon endpoint on a real broker: what a player may send and what it is told.

Beacons go straight to ``sto.viewer-activity`` keyed by event id (no outbox, no PostgreSQL
write per beacon); the endpoint checks them against its in-memory event statuses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sto_events.repository.postgres import postgres_store
from sto_events.service import EventsService
from stolive.broker import EmbeddedBroker, free_port
from stolive_shared import links
from stolive_shared.contracts.codec import decode, header
from stolive_shared.contracts.topics import ALL_TOPICS, VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.db import create_pool
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.settings import KafkaSettings
from tests.integration.test_events_api import LINK_SECRET, running_events_app, webinar
from tests.support import embedded_kafka, eventually, read_topic

Running = tuple[httpx.AsyncClient, EventsService, str]


@pytest.fixture(scope="module")
async def events_app(database_url: str, kafka: KafkaSettings) -> AsyncIterator[Running]:
    async with running_events_app(database_url, kafka, beacon_linger_ms=20) as running:
        yield running


@pytest.fixture
def api(events_app: Running) -> httpx.AsyncClient:
    return events_app[0]


async def event_in(events_app: Running, *steps: str) -> str:
    api, _service, token = events_app
    auth = {"Authorization": f"Bearer {token}"}
    answer = await api.post("/api/events", json=webinar("Kijkmeldingen"), headers=auth)
    event_id: str = answer.json()["id"]
    for step in steps:
        stepped = await api.post(f"/api/events/{event_id}/{step}", json={}, headers=auth)
        assert stepped.status_code == 200, stepped.text
    return event_id


def beacon(event_id: str, viewer: str = "", action: str = "join", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "viewer_id": viewer or f"v-{uuid.uuid4().hex[:10]}",
        "action": action,
        "mode": "live",
        "client_ts": datetime.now(UTC).isoformat(),
        **extra,
    }


async def beacons_on_kafka(kafka: KafkaSettings, event_id: str) -> list[ViewerBeacon]:
    records = await read_topic(kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions)
    found = []
    for record in records:
        if record.key == event_id.encode():
            message = decode(record.value)
            assert isinstance(message, ViewerBeacon)
            assert header(record.headers, "type") == "viewer.beacon"
            found.append(message)
    return found


async def test_a_beacon_is_answered_204_and_lands_on_kafka_keyed_by_the_event(
    events_app: Running, api: httpx.AsyncClient, kafka: KafkaSettings
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    sent = beacon(event_id, "join-link-42")
    answer = await api.post("/api/beacons", json=sent)
    assert answer.status_code == 204
    assert answer.content == b""
    [arrived] = await eventually(
        lambda: beacons_on_kafka(kafka, event_id), what="the beacon on sto.viewer-activity"
    )
    assert (arrived.viewer_id, arrived.action, arrived.mode) == ("join-link-42", "join", "live")
    assert arrived.client_ts == datetime.fromisoformat(sent["client_ts"])
    assert arrived.received_at >= arrived.client_ts - timedelta(seconds=5)


async def test_a_registrations_viewer_id_counts_only_with_its_watch_link_token(
    events_app: Running, api: httpx.AsyncClient, kafka: KafkaSettings
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    other_event = await event_in(events_app, "publish", "go-live")
    person = "v_" + uuid.uuid4().hex[:24]
    token = links.watch_token(LINK_SECRET, uuid.UUID(event_id), person)
    someone = "v_" + uuid.uuid4().hex[:24]
    refused = [
        beacon(event_id, person),  # no token: anyone could claim to be this person
        beacon(event_id, person, viewer_token=person + ".forged"),
        beacon(event_id, someone, viewer_token=token),  # another person's token
        beacon(other_event, person, viewer_token=token),  # signed for another broadcast
        beacon(event_id, person, viewer_token=token.replace(".", ".x", 1)),
    ]
    for item in refused:
        answer = await api.post("/api/beacons", json=item)
        assert answer.status_code == 403, item
        assert answer.json()["detail"] == "deze kijklink is niet geldig"
    # One forged beacon in a batch refuses the batch: nothing of it is counted.
    mixed = [beacon(event_id, "anoniem-1"), beacon(event_id, someone)]
    assert (await api.post("/api/beacons", json=mixed)).status_code == 403

    assert (
        await api.post("/api/beacons", json=beacon(event_id, person, viewer_token=token))
    ).status_code == 204
    arrived = await eventually(
        lambda: beacons_on_kafka(kafka, event_id), what="the proven beacon on the topic"
    )
    assert [b.viewer_id for b in arrived] == [person]
    assert await beacons_on_kafka(kafka, other_event) == []


async def test_the_text_plain_body_of_send_beacon_and_batches_are_accepted(
    events_app: Running, api: httpx.AsyncClient, kafka: KafkaSettings
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    batch = [beacon(event_id, f"kijker-{n}") for n in range(25)]
    answer = await api.post(
        "/api/beacons",
        content=json.dumps(batch).encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert answer.status_code == 204
    arrived = await eventually(
        lambda: _at_least(beacons_on_kafka(kafka, event_id), 25), what="25 beacons on Kafka"
    )
    assert sorted(b.viewer_id for b in arrived) == sorted(f"kijker-{n}" for n in range(25))


async def _at_least(found: Any, count: int) -> list[ViewerBeacon] | None:
    beacons: list[ViewerBeacon] = await found
    return beacons if len(beacons) >= count else None


async def test_an_unknown_or_unpublished_event_is_404(
    events_app: Running, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/api/beacons", json=beacon(str(uuid.uuid4())))).status_code == 404
    draft = await event_in(events_app)
    assert (await api.post("/api/beacons", json=beacon(draft))).status_code == 404


async def test_watching_live_needs_a_live_event(
    events_app: Running, api: httpx.AsyncClient
) -> None:
    published = await event_in(events_app, "publish")
    refused = await api.post("/api/beacons", json=beacon(published))
    assert refused.status_code == 409
    assert "gepubliceerd" in refused.json()["detail"]
    no_replay_yet = await api.post("/api/beacons", json=beacon(published, mode="replay"))
    assert no_replay_yet.status_code == 409
    ended = await event_in(events_app, "publish", "go-live", "end")
    assert (await api.post("/api/beacons", json=beacon(ended))).status_code == 409
    assert (await api.post("/api/beacons", json=beacon(ended, mode="replay"))).status_code == 204


async def test_the_endpoint_sees_a_go_live_at_once(
    events_app: Running, api: httpx.AsyncClient
) -> None:
    event_id = await event_in(events_app, "publish")
    _api, _service, token = events_app
    await api.post(f"/api/events/{event_id}/go-live", headers={"Authorization": f"Bearer {token}"})
    assert (await api.post("/api/beacons", json=beacon(event_id))).status_code == 204


async def test_a_go_live_by_another_process_is_seen_within_seconds(
    events_app: Running, api: httpx.AsyncClient, database_url: str
) -> None:
    event_id = await event_in(events_app, "publish")
    pool = await create_pool(database_url, "events", max_size=1)
    try:
        await EventsService(postgres_store(pool, "events")).go_live(uuid.UUID(event_id))
    finally:
        await pool.close()

    async def accepted() -> bool:
        answer = await api.post("/api/beacons", json=beacon(event_id))
        return answer.status_code == 204

    await eventually(accepted, timeout_s=5, what="the status reload to see the go-live")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"dit is geen json", "text/plain"),
        (b'{"event_id": "not-a-uuid", "viewer_id": "a", "action": "join"}', "application/json"),
        (b"[]", "application/json"),
    ],
    ids=["not-json", "not-a-beacon", "empty-batch"],
)
async def test_malformed_bodies_are_422(
    api: httpx.AsyncClient, body: bytes, content_type: str
) -> None:
    answer = await api.post("/api/beacons", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 422


async def test_malformed_beacons_are_422(events_app: Running, api: httpx.AsyncClient) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    for broken in (
        beacon(event_id, action="pause"),
        beacon(event_id, viewer="<script>"),
        beacon(event_id, client_ts="2026-11-23T10:00:00"),  # no offset
        beacon(event_id, client_ts=two_days_ago),
        beacon(event_id, email="eva@school.nl"),  # no personal data, no unknown fields
    ):
        assert (await api.post("/api/beacons", json=broken)).status_code == 422, broken
    assert (
        await api.post("/api/beacons", content=b"<xml/>", headers={"Content-Type": "text/xml"})
    ).status_code == 415


async def test_an_oversized_batch_is_413(events_app: Running, api: httpx.AsyncClient) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    too_many = [beacon(event_id) for _ in range(101)]
    assert (await api.post("/api/beacons", json=too_many)).status_code == 413
    huge = b"[" + b" " * 60_000 + b"]"
    assert (await api.post("/api/beacons", content=huge)).status_code == 413


async def test_a_viewer_faster_than_once_per_five_seconds_is_throttled(
    events_app: Running, api: httpx.AsyncClient, kafka: KafkaSettings
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    assert (await api.post("/api/beacons", json=beacon(event_id, "eva"))).status_code == 204
    again = await api.post("/api/beacons", json=beacon(event_id, "eva", "heartbeat"))
    assert again.status_code == 429
    assert again.headers["retry-after"] == "5"
    # Another viewer of the same event is not held back, and leaving always gets through.
    assert (await api.post("/api/beacons", json=beacon(event_id, "sam"))).status_code == 204
    assert (
        await api.post("/api/beacons", json=beacon(event_id, "eva", "leave"))
    ).status_code == 204
    # After leaving, coming back (a reload) is a fresh join.
    assert (await api.post("/api/beacons", json=beacon(event_id, "eva"))).status_code == 204
    arrived = await eventually(
        lambda: _at_least(beacons_on_kafka(kafka, event_id), 4), what="the accepted beacons"
    )
    assert [(b.viewer_id, b.action) for b in arrived if b.viewer_id == "eva"] == [
        ("eva", "join"),
        ("eva", "leave"),
        ("eva", "join"),
    ]


async def test_no_broker_is_503_so_the_player_retries(
    events_app: Running, database_url: str
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=2000)
    async with running_events_app(database_url, nowhere) as (api, _service, _token):
        answer = await api.post("/api/beacons", json=beacon(event_id))
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "2"
        # Pages and the API do not need Kafka.
        assert (await api.get(f"/api/events/{event_id}")).status_code == 200


async def test_a_broker_that_goes_away_turns_beacons_into_503_and_back(
    events_app: Running, database_url: str
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    port = free_port()
    broker = EmbeddedBroker(port)
    await broker.start()
    settings = embedded_kafka(broker.bootstrap_servers, request_timeout_ms=3000)
    await ensure_topics(settings, ALL_TOPICS)
    try:
        async with running_events_app(database_url, settings, beacon_ack_timeout_s=1.0) as (
            api,
            _service,
            _token,
        ):

            async def status() -> int:
                return (await api.post("/api/beacons", json=beacon(event_id))).status_code

            await eventually(lambda: _is(status(), 204), timeout_s=10, what="the producer")
            await broker.stop()
            await eventually(lambda: _is(status(), 503), timeout_s=15, what="503 after the loss")
            await broker.start()
            await ensure_topics(settings, ALL_TOPICS)
            await eventually(lambda: _is(status(), 204), timeout_s=30, what="204 after recovery")
    finally:
        await broker.stop()


async def _is(answer: Any, expected: int) -> bool:
    status: int = await answer
    return status == expected


async def test_when_kafka_falls_behind_the_player_is_told_to_retry_not_left_unheard(
    events_app: Running, database_url: str, kafka: KafkaSettings
) -> None:
    """At most ``beacon_max_pending`` beacons wait for Kafka; more is 503, never a silent loss."""
    event_id = await event_in(events_app, "publish", "go-live")
    async with running_events_app(
        database_url, kafka, beacon_max_pending=3, beacon_linger_ms=1500
    ) as (api, _service, _token):

        async def status(body: Any) -> int:
            return (await api.post("/api/beacons", json=body)).status_code

        await eventually(lambda: _is(status(beacon(event_id, "ready")), 204), what="the producer")
        assert await status([beacon(event_id, f"wacht-{n}") for n in range(2)]) == 204
        assert await status(beacon(event_id, "een-te-veel")) == 503
        # Once the batch is acknowledged there is room again.
        await eventually(
            lambda: _is(status(beacon(event_id, "later")), 204), timeout_s=10, what="room again"
        )


async def test_stopping_the_service_sends_every_beacon_it_accepted(
    events_app: Running, database_url: str, kafka: KafkaSettings
) -> None:
    event_id = await event_in(events_app, "publish", "go-live")
    async with running_events_app(database_url, kafka, beacon_linger_ms=60_000) as (
        api,
        _service,
        _token,
    ):
        await eventually(
            lambda: _is(_post(api, beacon(event_id, "stop-0")), 204), what="the producer"
        )
        batch = [beacon(event_id, f"stop-{n}") for n in range(1, 10)]
        assert (await api.post("/api/beacons", json=batch)).status_code == 204
    # The app has stopped; its minute-long batch went out on the way.
    arrived = await beacons_on_kafka(kafka, event_id)
    assert sorted(b.viewer_id for b in arrived) == sorted(f"stop-{n}" for n in range(10))


async def _post(api: httpx.AsyncClient, body: Any) -> int:
    return (await api.post("/api/beacons", json=body)).status_code
