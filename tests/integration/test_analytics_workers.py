"""The analytics Faust workers as real processes on the real broker and PostgreSQL.

Beacons, registrations and events are produced straight to Kafka; figures are read back over
HTTP from the analytics API (a real uvicorn server in this process). Short settings stand in
for long waits: a viewer stops counting 4 s after their last beacon, ended events are
finalised 2 s after they end. Recounts use the domain rules over the records in the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from playwright.async_api import expect

from sto_analytics.bootstrap import DEFINITION
from sto_analytics.config import AnalyticsSettings
from sto_analytics.domain import LiveViewers, minute_of, watch_figures
from sto_analytics.streams.viewers import LiveState, reread_recent
from stolive.broker import free_port
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.codec import decode, header
from stolive_shared.contracts.events import EventEnded, EventPublished, EventSnapshot, EventWentLive
from stolive_shared.contracts.registrations import (
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationCheckInUndone,
    RegistrationConfirmed,
    RegistrationCorrected,
    RegistrationView,
)
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.links import sign
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.runtime import Runtime, SignalFreeServer
from stolive_shared.settings import KafkaSettings
from tests.sealing import TEST_KEYS
from tests.support import (
    eventually,
    organiser_session,
    produce_messages,
    read_topic,
    serious_accessibility_violations,
)

LIVE_TIMEOUT_S = 4.0
SECRET = "analytics-test-link-secret"
ROOT = Path(__file__).resolve().parents[2]


# -- real parts ---------------------------------------------------------------------------


def worker_env(
    kafka: KafkaSettings, database_url: str, name: str, data_dir: Path
) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "DATABASE_URL": database_url,
        "WORKER_NAME": name,
        "FAUST_DATA_DIR": str(data_dir / name),
        "LIVE_TIMEOUT_S": str(LIVE_TIMEOUT_S),
        "EXPIRY_INTERVAL_S": "0.5",
        "FINALISE_GRACE_S": "2",
        "FINALISE_CHECK_INTERVAL_S": "1",
        "FLUSH_INTERVAL_S": "0.3",
        "LINK_SECRET": SECRET,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Worker:
    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sto_analytics", "worker"],
                env=self.env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def ready(self) -> bool:
        """Faust logs 'Worker ready' after each rebalance's recovery."""
        return self.log.exists() and b"Worker ready" in self.log.read_bytes()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Analytics:
    kafka: KafkaSettings
    database_url: str
    api: httpx.AsyncClient
    base_url: str
    workers: list[Worker]
    data_dir: Path
    produced: list[ViewerBeacon] = field(default_factory=list)

    def add_worker(self) -> Worker:
        name = f"analytics-{len(self.workers) + 1}"
        worker = Worker(
            name,
            worker_env(self.kafka, self.database_url, name, self.data_dir),
            self.data_dir / f"{name}.log",
        )
        worker.start()
        self.workers.append(worker)
        return worker

    async def produce(self, messages: Sequence[Message]) -> None:
        if TEST_KEYS.unstored:
            conn = await asyncpg.connect(self.database_url)
            try:
                await TEST_KEYS.store(conn)  # as the sign-up stores them with registrations
            finally:
                await conn.close()
        await produce_messages(self.kafka, messages)
        self.produced.extend(m for m in messages if isinstance(m, ViewerBeacon))

    async def until_counting(self) -> None:
        """Wait until the workers count: a fresh probe viewer joins every second until seen."""
        probe = uuid.uuid4()

        async def counted() -> bool:
            await self.produce([beacon(probe, "v_probe", datetime.now(UTC), "join")])
            return await self.live(probe) >= 1

        await eventually(counted, what="the workers to count", timeout_s=60, interval_s=1)

    async def figures(self, event_id: uuid.UUID) -> dict[str, Any]:
        answer = await self.api.get(f"/api/events/{event_id}/figures")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def live(self, event_id: uuid.UUID) -> int:
        answer = await self.api.get(f"/api/events/{event_id}/live")
        assert answer.status_code == 200, answer.text
        viewers: int = answer.json()["viewers"]
        return viewers


@pytest.fixture(scope="module")
async def analytics(
    kafka: KafkaSettings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Analytics]:
    await apply_migrations(database_url, "analytics", [DEFINITION.migrations])
    settings = AnalyticsSettings(
        database_url=database_url,
        kafka=kafka,
        link_secret=SECRET,
        events_api_url="http://127.0.0.1:9",
        live_feed_interval_s=0.2,
    )
    pool = await create_pool(database_url, "analytics", max_size=5)
    port = free_port()
    app = DEFINITION.app(Runtime(settings=settings, pool=pool))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = SignalFreeServer(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, what="the analytics API to serve", interval_s=0.05)
    base_url = f"http://127.0.0.1:{port}"
    cookies = await organiser_session(app, "test-organiser")
    data_dir = tmp_path_factory.mktemp("analytics")
    async with httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=10) as api:
        here = Analytics(kafka, database_url, api, base_url, [], data_dir)
        here.add_worker()
        try:
            await here.until_counting()
            yield here
        finally:
            for worker in here.workers:
                worker.stop()
            server.should_exit = True
            await serving
            await pool.close()


# -- messages -----------------------------------------------------------------------------


def beacon(
    event_id: uuid.UUID,
    viewer_id: str,
    at: datetime,
    action: str = "heartbeat",
    mode: str = "live",
) -> ViewerBeacon:
    return ViewerBeacon.create(
        event_id=event_id,
        viewer_id=viewer_id,
        action=action,
        mode=mode,
        client_ts=at,
        received_at=at,
    )


def watching(
    event_id: uuid.UUID, viewer_id: str, start: datetime, minutes: float, mode: str = "live"
) -> list[ViewerBeacon]:
    """A join, a heartbeat every 30 s for ``minutes``, no leave."""
    beats = int(minutes * 2)
    return [
        beacon(
            event_id,
            viewer_id,
            start + timedelta(seconds=30 * n),
            "join" if n == 0 else "heartbeat",
            mode,
        )
        for n in range(beats)
    ]


def snapshot(
    event_id: uuid.UUID, status: str, revision: int, start: datetime, **extra: Any
) -> EventSnapshot:
    return EventSnapshot(
        event_id=event_id,
        revision=revision,
        kind="webinar",
        status=status,
        title=extra.pop("title", "STO LIVE test"),
        starts_at=start,
        ends_at=start + timedelta(minutes=30),
        **extra,
    )


def registration(
    event_id: uuid.UUID,
    viewer_id: str,
    region: str | None,
    role: str,
    name: str,
    status: str = "confirmed",
    registration_id: uuid.UUID | None = None,
    school_code: str | None = None,
) -> RegistrationView:
    now = datetime.now(UTC)
    return TEST_KEYS.view(
        school_code=school_code,
        registration_id=registration_id,
        event_id=event_id,
        status=status,  # type: ignore[arg-type]
        name=name,
        email=f"{viewer_id}@school.nl",
        role=role,
        region_code=region,
        viewer_id=viewer_id,
        event_title="STO LIVE test",
        event_starts_at=now,
        event_ends_at=now + timedelta(minutes=30),
        event_revision=1,
    )


def recount(beacons: list[ViewerBeacon], event_id: uuid.UUID) -> dict[str, int]:
    """Watch figures by the domain rules over the beacons of one event."""
    minutes: dict[tuple[str, str], set[int]] = {}
    for b in beacons:
        if b.event_id == event_id:
            minutes.setdefault((b.viewer_id, b.mode), set()).add(minute_of(b.received_at))
    counted = watch_figures(minutes)
    return {
        "views_live": counted.views_live,
        "views_replay": counted.views_replay,
        "unique_viewers": counted.unique_viewers,
        "watch_minutes_live": counted.watch_minutes_live,
        "watch_minutes_replay": counted.watch_minutes_replay,
    }


def recount_live(beacons: list[ViewerBeacon], event_id: uuid.UUID, now: float) -> int:
    live = LiveViewers(LIVE_TIMEOUT_S)
    for b in beacons:
        if b.event_id == event_id:
            live.apply(b.viewer_id, b.action, b.mode, b.received_at.timestamp(), now)
    live.expire(now)
    return live.count()


def watch_part(figures: dict[str, Any]) -> dict[str, int]:
    return {
        key: figures[key]
        for key in (
            "views_live",
            "views_replay",
            "unique_viewers",
            "watch_minutes_live",
            "watch_minutes_replay",
        )
    }


async def topic_beacons(kafka: KafkaSettings, events: set[uuid.UUID]) -> list[ViewerBeacon]:
    """Every beacon of these events as it is in the topic now: the recount's input."""
    found = []
    for record in await read_topic(kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions):
        with contextlib.suppress(Exception):
            message = decode(record.value)
            if isinstance(message, ViewerBeacon) and message.event_id in events:
                found.append(message)
    return found


# -- tests --------------------------------------------------------------------------------


async def test_joins_without_leaves_expire_and_duplicates_do_not_count(
    analytics: Analytics, figures: Callable[[str], None]
) -> None:
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    joins = [beacon(event_id, f"v_{n}", now, "join") for n in range(3)]
    duplicates = [joins[0], joins[0], joins[1]]
    late = [beacon(event_id, "v_2", now - timedelta(seconds=2))]  # older than its join
    await analytics.produce([*joins, *duplicates, *late])

    await eventually(lambda: _is(analytics.live(event_id), 3), what="3 live viewers", timeout_s=45)
    await analytics.produce([beacon(event_id, "v_2", now + timedelta(seconds=1), "leave")])
    await eventually(lambda: _is(analytics.live(event_id), 2), what="2 after a leave")
    # Nobody sends a leave or a heartbeat: both stop counting after the live timeout.
    started = asyncio.get_running_loop().time()
    await eventually(lambda: _is(analytics.live(event_id), 0), what="expiry", timeout_s=15)
    expired_after = asyncio.get_running_loop().time() - started
    body = await analytics.figures(event_id)
    assert body["live"]["peak"] == 3
    assert body["unique_viewers"] == 3
    assert body["views_live"] == 3
    figures(
        f"analytics: 3 joins + 3 duplicates + 1 late beacon -> peak 3; without leaves the count "
        f"fell to 0 {expired_after:.1f}s after the leave (timeout {LIVE_TIMEOUT_S:.0f}s)"
    )


async def test_malformed_beacons_go_to_the_dead_letter_topic_and_counting_goes_on(
    analytics: Analytics,
) -> None:
    key = uuid.uuid4()
    producer = create_producer(analytics.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(VIEWER_ACTIVITY.name, b"{not json", key=str(key).encode())
        await producer.send_and_wait(
            VIEWER_ACTIVITY.name, b'{"type": "viewer.beacon", "version": 1}', key=str(key).encode()
        )
    finally:
        await producer.stop()
    event_id = uuid.uuid4()
    await analytics.produce([beacon(event_id, "v_after", datetime.now(UTC), "join")])
    await eventually(lambda: _is(analytics.live(event_id), 1), what="counting after poison")

    async def letters() -> int:
        records = await read_topic(analytics.kafka, VIEWER_ACTIVITY.dlq.name, 1)
        return sum(
            1
            for r in records
            if r.key == str(key).encode()
            and header(r.headers, "dlq.consumer") == "analytics.viewers"
        )

    await eventually(lambda: _is(letters(), 2), what="two dead letters")
    assert all(w.alive() for w in analytics.workers)


async def test_an_ended_broadcast_gets_final_figures_attendance_and_certificates(
    analytics: Analytics, browser: Any, figures: Callable[[str], None]
) -> None:
    event_id = uuid.uuid4()
    series = f"sto-live-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=40)
    anna = registration(event_id, "v_anna", "drenthe", "docent", "Anna de Vries")
    bert = registration(event_id, "v_bert", "twente", "schoolleider", "Bert Bos")
    chris = registration(event_id, "v_chris", "drenthe", "docent", "Chris Jansen")
    dirk = registration(event_id, "v_dirk", None, "anders", "Dirk")
    await analytics.produce(
        [
            EventPublished.create(
                event=snapshot(event_id, "published", 1, start, series_code=series, series_number=1)
            ),
            RegistrationConfirmed.create(registration=anna),
            RegistrationConfirmed.create(registration=bert),
            RegistrationConfirmed.create(registration=chris),
            RegistrationCheckedIn.create(registration=chris, checked_in_at=start),
            RegistrationConfirmed.create(registration=dirk),
            RegistrationCancelled.create(
                registration=registration(
                    event_id, "v_dirk", None, "anders", "Dirk", "cancelled", dirk.registration_id
                ),
                previous_status="confirmed",
            ),
        ]
    )
    await eventually(
        lambda: _registered(analytics, event_id, 4), what="registrants in the read model"
    )
    history = [
        *watching(event_id, "v_anna", start + timedelta(minutes=1), 12),  # attends
        *watching(event_id, "v_bert", start + timedelta(minutes=2), 4),  # too short
        *watching(event_id, "v_bert", start + timedelta(minutes=20), 4, "replay"),  # still short
        *watching(event_id, "anon_1", start + timedelta(minutes=1), 25),
        *watching(event_id, "anon_1", start + timedelta(minutes=28), 2),  # a second view
    ]
    await analytics.produce(history)
    went_live = EventWentLive.create(
        event=snapshot(event_id, "live", 2, start, series_code=series, series_number=1)
    )
    ended = EventEnded.create(
        event=snapshot(event_id, "ended", 3, start, series_code=series, series_number=1)
    )
    await analytics.produce(
        [
            went_live.model_copy(update={"occurred_at": start}),
            ended.model_copy(update={"occurred_at": start + timedelta(minutes=30)}),
        ]
    )

    final = await eventually(
        lambda: _final(analytics, event_id), what="final figures", timeout_s=30
    )
    expected = recount(history, event_id)
    assert watch_part(final) == expected
    assert final["funnel"] == {
        "registered": 4,
        "confirmed": 3,
        "waitlisted": 0,
        "cancelled": 1,
        "watched": 2,
        "attended": 2,
        "attended_live": 2,  # Bert's 4 live and 4 replay minutes are not added up
        "attended_replay": 0,
        "no_shows": 1,
        "attendance_rate": round(2 / 3, 4),
    }
    assert final["average_live_viewers"] == round(expected["watch_minutes_live"] / 30, 2)
    regions = {g["group"]: g for g in final["by_region"]}
    assert regions["drenthe"]["attended"] == 2  # Anna watched 12 minutes, Chris was checked in
    assert regions["onbekend"]["viewers"] == 1

    series_answer = await analytics.api.get(f"/api/series/{series}")
    assert series_answer.status_code == 200
    assert series_answer.json()["broadcasts"] == 1
    assert series_answer.json()["total_views"] == expected["views_live"] + expected["views_replay"]

    outbox = await _outbox(analytics.database_url, event_id)
    assert sorted(outbox) == ["attendance.finalised", *["attendance.recorded"] * 3]

    csv = await analytics.api.get(f"/api/events/{event_id}/attendance.csv")
    assert csv.text.startswith("\ufeffregistratie;naam;")
    assert "Anna de Vries;aangemeld;drenthe;docent;12;ja;nee;ja" in csv.text

    page = await browser.new_page()
    try:
        await page.goto(
            f"{analytics.base_url}/certificaat/{sign(SECRET, 'certificate', anna.registration_id)}"
        )
        assert "Anna de Vries" in await page.inner_text("main")
        assert "12 minuten" in await page.inner_text("main")
        assert await serious_accessibility_violations(page) == []
        await page.goto(
            f"{analytics.base_url}/certificaat/{sign(SECRET, 'certificate', chris.registration_id)}"
        )
        assert "Aanwezig op locatie" in await page.inner_text("main")
        refused = await page.goto(
            f"{analytics.base_url}/certificaat/{sign(SECRET, 'certificate', bert.registration_id)}"
        )
        assert refused is not None
        assert refused.status == 404
        forged = await page.goto(
            f"{analytics.base_url}/certificaat/{anna.registration_id.hex}.forged"
        )
        assert forged is not None
        assert forged.status == 404
    finally:
        await page.close()
    figures(
        f"analytics: ended broadcast finalised: {final['views']} views, "
        f"{final['watch_minutes_live']} live minutes, attendance 2 of 3 (>= 10 min or "
        f"checked in), 3 attendance.recorded + 1 attendance.finalised in the outbox"
    )


async def test_a_correction_and_an_undone_check_in_change_the_registrant_not_the_status(
    analytics: Analytics,
) -> None:
    event_id = uuid.uuid4()
    start = datetime.now(UTC) + timedelta(hours=1)
    anna = registration(event_id, "v_anna2", "drenthe", "docent", "Anna", school_code="99ZG00")
    bert = registration(event_id, "v_bert2", "drenthe", "docent", "Bert", school_code="99ZG00")
    moved = registration(
        event_id,
        "v_anna2",
        "groningen",
        "schoolleider",
        "Anna",
        registration_id=anna.registration_id,
        school_code="99ZE00",
    )
    await analytics.produce(
        [
            EventPublished.create(event=snapshot(event_id, "published", 1, start)),
            RegistrationConfirmed.create(registration=anna),
            RegistrationConfirmed.create(registration=bert),
            RegistrationCheckedIn.create(registration=anna, checked_in_at=start),
            RegistrationCheckedIn.create(registration=bert, checked_in_at=start),
        ]
    )

    async def both_present() -> bool:
        return bool((await analytics.figures(event_id))["funnel"]["attended"] == 2)

    # Both check-ins are in the read model before one is taken back: the undo clears a
    # stored check-in, where any other message leaves it.
    await eventually(both_present, what="two check-ins in the read model", timeout_s=30)
    await analytics.produce(
        [
            RegistrationCheckInUndone.create(registration=bert),
            RegistrationCorrected.create(registration=moved),
        ]
    )

    async def settled() -> dict[str, Any] | None:
        body = await analytics.figures(event_id)
        schools = {s["school_code"]: (s["confirmed"], s["attended"]) for s in body["by_school"]}
        return body if schools == {"99ZE00": (1, 1), "99ZG00": (1, 0)} else None

    body = await eventually(settled, what="the corrected and undone registrants", timeout_s=30)
    assert body["funnel"]["confirmed"] == 2  # the status stays what it was
    assert body["funnel"]["attended"] == 1  # Anna, checked in; Bert's check-in was undone
    conn = await asyncpg.connect(analytics.database_url)
    try:
        rows = {
            row["registration_id"]: row
            for row in await conn.fetch(
                "SELECT * FROM analytics.registrants WHERE event_id = $1", event_id
            )
        }
    finally:
        await conn.close()
    assert rows[bert.registration_id]["checked_in"] is False
    assert rows[bert.registration_id]["status"] == "confirmed"
    annas = rows[anna.registration_id]
    assert (annas["region_code"], annas["role"], annas["school_code"]) == (
        "groningen",
        "schoolleider",
        "99ZE00",
    )
    assert annas["checked_in"] is True


async def test_the_dashboard_counter_moves_while_beacons_flow(
    analytics: Analytics, browser: Any
) -> None:
    event_id = uuid.uuid4()
    start = datetime.now(UTC)
    await analytics.produce(
        [
            EventWentLive.create(
                event=snapshot(event_id, "live", 2, start, title="Live op het dashboard")
            )
        ]
    )
    watching = ["v_first"]

    async def keep_watching() -> None:
        """Every viewer so far heartbeats each second, as a player does: on a slow machine
        the page may take longer than the live timeout (4 s here) to show a number."""
        while True:
            now = datetime.now(UTC)
            await analytics.produce([beacon(event_id, viewer, now) for viewer in watching])
            await asyncio.sleep(1.0)

    await analytics.produce([beacon(event_id, "v_first", datetime.now(UTC), "join")])
    heartbeats = asyncio.create_task(keep_watching())
    try:
        await watch_the_counter(analytics, browser, event_id, watching)
    finally:
        heartbeats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeats


async def watch_the_counter(
    analytics: Analytics, browser: Any, event_id: uuid.UUID, watching: list[str]
) -> None:
    await eventually(lambda: _is(analytics.live(event_id), 1), what="first viewer")
    context = await browser.new_context()
    await context.add_cookies(
        [
            {"name": name, "value": value, "url": analytics.base_url}
            for name, value in analytics.api.cookies.items()
        ]
    )
    page = await context.new_page()
    try:
        await page.goto(f"{analytics.base_url}/dashboard/{event_id}")
        await expect(page.locator("#live-count")).to_have_text("1", timeout=20_000)
        assert await serious_accessibility_violations(page) == []
        seen = ["1"]
        for n in range(2, 6):
            watching.append(f"v_{n}")
            await analytics.produce([beacon(event_id, f"v_{n}", datetime.now(UTC), "join")])
            # Playwright's own waiting (no string eval: the page's CSP forbids it).
            await expect(page.locator("#live-count")).to_have_text(str(n), timeout=20_000)
            seen.append(await page.inner_text("#live-count"))
        assert seen == ["1", "2", "3", "4", "5"]
        await page.click("text=Definitie live kijkers en piek")
        assert await page.is_visible("text=niet dubbel")
        assert await serious_accessibility_violations(page) == []
    finally:
        await context.close()


async def test_two_workers_and_a_sigkill_give_the_totals_of_a_recount(
    analytics: Analytics, figures: Callable[[str], None]
) -> None:
    events = [uuid.uuid4() for _ in range(8)]
    start = datetime.now(UTC) - timedelta(minutes=20)
    second = analytics.add_worker()
    # Both workers share the partitions once the rebalance is over (~3 s after the join).
    await eventually(second.ready, what="the second worker to join", timeout_s=60)
    await asyncio.sleep(2)
    assert second.alive()
    batch: list[Message] = []
    for index, event_id in enumerate(events):
        for viewer in range(15):
            batch.extend(
                watching(
                    event_id,
                    f"v_{index}_{viewer}",
                    start + timedelta(minutes=viewer % 5),
                    3 + viewer % 7,
                )
            )
        batch.extend(
            beacon(event_id, f"now_{index}_{v}", datetime.now(UTC), "join")
            for v in range(index + 1)
        )
    await analytics.produce(batch)
    await _agree_with_recount(analytics, events, "two workers")

    first = analytics.workers[0]
    first.kill()
    more: list[Message] = []
    for index, event_id in enumerate(events):
        more.extend(watching(event_id, f"late_{index}", start + timedelta(minutes=12), 4, "replay"))
        more.append(beacon(event_id, f"now_{index}_0", datetime.now(UTC)))
    await analytics.produce(more)
    first.start()
    checked = await _agree_with_recount(analytics, events, "after SIGKILL")
    figures(
        f"analytics: 2 workers, then one SIGKILLed and restarted: views, unique viewers, watch "
        f"minutes and live count of {checked} events equal a recount from the topic"
    )


async def _agree_with_recount(analytics: Analytics, events: list[uuid.UUID], when: str) -> int:
    beacons = await topic_beacons(analytics.kafka, set(events))
    differences: list[str] = []

    async def all_agree() -> bool:
        differences.clear()
        for event_id in events:
            body = await analytics.figures(event_id)
            counted, expected = watch_part(body), recount(beacons, event_id)
            if counted != expected:
                differences.append(f"{event_id}: {counted} != {expected}")
            now = datetime.now(UTC).timestamp()
            live, live_expected = body["live"]["viewers"], recount_live(beacons, event_id, now)
            if live != live_expected:
                differences.append(f"{event_id}: live {live} != {live_expected}")
        return not differences

    try:
        await eventually(all_agree, what=f"a recount ({when})", timeout_s=60, interval_s=1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; differences: {differences}") from exc
    return len(events)


# -- helpers ------------------------------------------------------------------------------


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def _registered(analytics: Analytics, event_id: uuid.UUID, count: int) -> bool:
    return bool((await analytics.figures(event_id))["funnel"]["registered"] == count)


async def _final(analytics: Analytics, event_id: uuid.UUID) -> dict[str, Any] | None:
    body = await analytics.figures(event_id)
    return body if body["final"] else None


async def _outbox(database_url: str, event_id: uuid.UUID) -> list[str]:
    pool = await create_pool(database_url, "analytics", max_size=1)
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT headers FROM outbox WHERE key = $1", str(event_id))
    finally:
        await pool.close()
    return [row["headers"]["type"] for row in rows]


async def test_a_restarted_worker_rereads_the_last_live_timeout_of_beacons(
    kafka: KafkaSettings,
) -> None:
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    await produce_messages(
        kafka,
        [
            *(beacon(event_id, f"v_{n}", now, "join") for n in range(5)),
            beacon(event_id, "v_4", now + timedelta(seconds=1), "leave"),
            beacon(event_id, "v_0", now - timedelta(seconds=1)),  # older: ignored
        ],
    )
    settings = AnalyticsSettings(kafka=kafka, live_timeout_s=30)
    state = LiveState(settings.live_timeout_s, {})
    merged = await reread_recent(settings, set(range(VIEWER_ACTIVITY.partitions)), state)
    assert merged >= 7
    assert state.events[str(event_id)].viewers.count() == 4
