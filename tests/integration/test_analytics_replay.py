"""Replay viewing after the end, on the real worker, broker and PostgreSQL: figures keep up,
replay attendance counts distinct minutes of the recording within the replay window, a late
replay attendee gets a certificate and exactly one ``attendance.recorded``, and the public
verify page shows the name and the event for a valid code only.

Beacons are produced straight to Kafka with the moment they arrived set by the test (the
events service's clock), so "30 days after the end" needs no waiting: the event's end is set
in the past instead. The worker finalises 2 s after an end (``worker_env``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from sto_analytics.finalising import recorded_message_id
from stolive_shared.contracts.analytics import AttendanceRecorded
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.events import EventEnded, EventPublished, EventWentLive
from stolive_shared.contracts.registrations import RegistrationConfirmed
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.links import sign
from tests.integration import test_analytics_workers as workers
from tests.integration.test_analytics_workers import (
    SECRET,
    Analytics,
    registration,
    snapshot,
    watching,
)
from tests.support import eventually

MIN_MINUTES = 10  # the default attendance_min_minutes
# The workers' fixture: a worker of this module's own and the API.
analytics = workers.analytics


def replaying(
    event_id: uuid.UUID, viewer_id: str, at: datetime, positions: Sequence[float]
) -> list[ViewerBeacon]:
    """A replay viewer's beacons at these positions of the recording, 5 s apart."""
    return [
        ViewerBeacon.create(
            event_id=event_id,
            viewer_id=viewer_id,
            action="join" if n == 0 else "heartbeat",
            mode="replay",
            client_ts=at + timedelta(seconds=5 * n),
            received_at=at + timedelta(seconds=5 * n),
            position_s=position,
        )
        for n, position in enumerate(positions)
    ]


async def ended_broadcast(
    analytics: Analytics, *, ended_ago: timedelta, people: list[Any], series: str | None = None
) -> uuid.UUID:
    """A 30-minute broadcast that ended ``ended_ago``, with these registrations confirmed;
    returns once it is finalised."""
    event_id: uuid.UUID = people[0].event_id
    end = datetime.now(UTC) - ended_ago
    start = end - timedelta(minutes=30)
    extra = {"series_code": series, "series_number": 1} if series else {}
    await analytics.produce(
        [
            EventPublished.create(event=snapshot(event_id, "published", 1, start, **extra)),
            *(RegistrationConfirmed.create(registration=p) for p in people),
        ]
    )
    await eventually(
        lambda: _registrants(analytics.database_url, event_id, len(people)),
        what="the registrants in the read model",
    )
    went_live = EventWentLive.create(event=snapshot(event_id, "live", 2, start, **extra))
    ended = EventEnded.create(event=snapshot(event_id, "ended", 3, start, **extra))
    await analytics.produce(
        [
            went_live.model_copy(update={"occurred_at": start}),
            ended.model_copy(update={"occurred_at": end}),
        ]
    )
    await eventually(
        lambda: _figures_when(analytics, event_id, lambda f: f["final"]),
        what="the finalisation",
        timeout_s=60,
    )
    return event_id


async def test_replay_after_the_finalisation_counts_and_brings_one_certificate_each(
    analytics: Analytics, figures: Callable[[str], None]
) -> None:
    event_id = uuid.uuid4()
    series = f"sto-replay-{uuid.uuid4().hex[:6]}"
    anna = registration(event_id, "v_anna_r", "drenthe", "docent", "Anna Terugkijk")
    bert = registration(event_id, "v_bert_r", "drenthe", "docent", "Bert Halfweg")
    carla = registration(event_id, "v_carla_r", "twente", "docent", "Carla Live")
    start_live = (datetime.now(UTC) - timedelta(days=2, minutes=20)).replace(
        second=0, microsecond=0
    )
    # Carla watched 12 minutes live (clock minutes, two days ago): live attendance.
    await analytics.produce(watching(event_id, "v_carla_r", start_live, 12))
    await ended_broadcast(
        analytics, ended_ago=timedelta(days=2), people=[anna, bert, carla], series=series
    )
    before = await analytics.figures(event_id)
    assert (before["funnel"]["attended_live"], before["funnel"]["attended_replay"]) == (1, 0)
    series_before = (await analytics.api.get(f"/api/series/{series}")).json()

    # Two days later Anna watches the recording: minutes 0-11, minute 3 twice (rewound),
    # all within one clock minute or two; Bert watches 4 minutes (too few) and an anonymous
    # viewer 3 minutes.
    now = datetime.now(UTC)
    anna_positions = [0, 30, 60, 120, 180, 185, 180, 240, 300, 360, 420, 480, 540, 600, 660]
    await analytics.produce(
        [
            *replaying(event_id, "v_anna_r", now, anna_positions),
            *replaying(event_id, "v_bert_r", now, [0, 60, 120, 180]),
            *replaying(event_id, "anon_r", now, [0, 60, 120]),
        ]
    )
    # The figures count her at once; her certificate follows from the periodic refresh.
    after = await eventually(
        lambda: _figures_when(analytics, event_id, lambda f: f["certificates"] == 2),
        what="Anna's replay attendance and certificate",
        timeout_s=60,
    )
    assert after["watch_minutes_replay"] == 12 + 4 + 3
    assert after["views_replay"] == 3
    assert after["unique_viewers"] == 4
    assert after["funnel"]["attended_live"] == 1
    assert after["funnel"]["attended_replay"] == 1
    assert after["replay_attendance_days"] == 30
    assert after["certificates"] == 2

    async def series_caught_up() -> dict[str, Any] | None:
        body: dict[str, Any] = (await analytics.api.get(f"/api/series/{series}")).json()
        return body if body["total_views"] == series_before["total_views"] + 3 else None

    await eventually(series_caught_up, what="the series totals to follow the replays")

    # The same beacons again (a redelivery) and more minutes: no second message.
    await analytics.produce(replaying(event_id, "v_anna_r", now, [*anna_positions, 720, 780]))
    await eventually(
        lambda: _figures_when(analytics, event_id, lambda f: f["watch_minutes_replay"] == 21),
        what="Anna's two further minutes",
    )
    recorded = await _recorded(analytics.database_url, event_id)
    late = [m for m in recorded if m.registration_id == anna.registration_id]
    assert len(late) == 1
    [message] = late
    assert message.message_id == recorded_message_id(anna.registration_id, late=True)
    assert (message.attended_as, message.certificate, message.attended) == ("replay", True, True)
    # As counted when the refresh found her (a batch may hold part of her beacons).
    assert message.minutes_live == 0
    assert MIN_MINUTES <= message.minutes_replay <= 12
    live = [m for m in recorded if m.registration_id == carla.registration_id]
    assert [(m.attended_as, m.certificate, m.minutes_live) for m in live] == [("live", True, 12)]
    assert not [m for m in recorded if m.registration_id == bert.registration_id]

    csv = (await analytics.api.get(f"/api/events/{event_id}/attendance.csv")).text
    assert "Anna Terugkijk;aangemeld;drenthe;docent;14;nee;nee;ja;terugkijken;0;14;ja" in csv
    assert "Bert Halfweg;aangemeld;drenthe;docent;4;nee;nee;nee;;0;4;nee" in csv

    code = await _code(analytics.database_url, anna.registration_id)
    grouped = f"{code[:5]}-{code[5:]}".lower()
    page = await analytics.api.get("/certificaat/controle", params={"code": grouped})
    assert page.status_code == 200
    assert "Dit certificaat is echt" in page.text
    assert "Anna Terugkijk" in page.text
    assert "STO LIVE test" in page.text
    assert "12 minuten" not in page.text  # the name and the event, nothing more
    certificate = await analytics.api.get(
        f"/certificaat/{sign(SECRET, 'certificate', anna.registration_id)}"
    )
    assert re.search(r"<dt>Teruggekeken</dt><dd>1[0-2] minuten</dd>", certificate.text)
    assert code[:5] in certificate.text
    assert "size: A4" in certificate.text
    figures(
        "analytics/replay: finalised 2 days after the end, then replay by the recording: "
        f"{after['watch_minutes_replay']} replay minutes, attendance 1 live + 1 replay, "
        "one attendance.recorded v2 (replay, certificate) for the late attendee"
    )


async def test_replay_after_the_window_counts_in_the_figures_but_not_toward_attendance(
    analytics: Analytics,
) -> None:
    event_id = uuid.uuid4()
    dora = registration(event_id, "v_dora_r", "drenthe", "docent", "Dora Laat")
    await ended_broadcast(analytics, ended_ago=timedelta(days=31), people=[dora])
    await analytics.produce(
        replaying(event_id, "v_dora_r", datetime.now(UTC), [60.0 * n for n in range(15)])
    )
    body = await eventually(
        lambda: _figures_when(analytics, event_id, lambda f: f["watch_minutes_replay"] == 15),
        what="the late replay in the figures",
        timeout_s=60,
    )
    assert body["funnel"]["attended"] == 0
    assert body["certificates"] == 0
    await eventually(
        lambda: _refreshed(analytics.database_url, event_id), what="the refresh to have run"
    )
    assert await _recorded(analytics.database_url, event_id) == []


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        ("ZZZZZ-ZZZZZ", 404, "Onbekende code"),
        ("ABC", 422, "bestaat uit 10 letters en cijfers"),
        ("", 200, "Controlecode"),
    ],
)
async def test_the_verify_page_says_little_about_a_code_it_does_not_know(
    analytics: Analytics, code: str, status: int, says: str
) -> None:
    page = await analytics.api.get("/certificaat/controle", params={"code": code})
    assert page.status_code == status
    assert says in page.text


async def test_a_flood_of_lookups_from_one_address_is_limited(analytics: Analytics) -> None:
    answers = [
        (await analytics.api.get("/certificaat/controle", params={"code": "ZZZZZ-ZZZZ0"}))
        for _ in range(25)
    ]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].headers["Retry-After"]
    assert "te veel codes" in limited[0].text


# -- helpers ------------------------------------------------------------------------------


async def _figures_when(
    analytics: Analytics, event_id: uuid.UUID, condition: Callable[[dict[str, Any]], Any]
) -> dict[str, Any] | None:
    body = await analytics.figures(event_id)
    return body if condition(body) else None


async def _query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _registrants(database_url: str, event_id: uuid.UUID, count: int) -> bool:
    rows = await _query(
        database_url, "SELECT 1 FROM analytics.registrants WHERE event_id = $1", event_id
    )
    return len(rows) == count


async def _recorded(database_url: str, event_id: uuid.UUID) -> list[AttendanceRecorded]:
    rows = await _query(
        database_url, "SELECT payload FROM analytics.outbox WHERE key = $1", str(event_id)
    )
    messages = [decode(bytes(row["payload"])) for row in rows]
    return [m for m in messages if isinstance(m, AttendanceRecorded)]


async def _code(database_url: str, registration_id: uuid.UUID) -> str:
    rows = await _query(
        database_url,
        "SELECT verification_code FROM analytics.certificates WHERE registration_id = $1",
        registration_id,
    )
    code: str = rows[0]["verification_code"]
    return code


async def _refreshed(database_url: str, event_id: uuid.UUID) -> bool:
    rows = await _query(
        database_url,
        "SELECT 1 FROM analytics.tracked_events WHERE event_id = $1 AND NOT figures_stale",
        event_id,
    )
    return bool(rows)
