"""Replay on a later day, through the whole platform: real beacons with the player's position
through the gateway's beacon API, the figures API and the dashboard following them, the
replay attendee's certificate in a browser, its code checked in a second browser, and the
one ``attendance.recorded`` v2 read by an independent client from the analytics topic.

"A later day": once the broadcast is finalised its end is set back two days in analytics'
read model, the way the database would hold it had the replay come two days later.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from playwright.async_api import expect

from stolive_shared import links
from stolive_shared.contracts.analytics import AttendanceRecorded
from stolive_shared.contracts.codec import decode, header
from stolive_shared.contracts.topics import ANALYTICS
from stolive_shared.urls import PublicUrls
from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_analytics_live_figures import viewer_of
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually, read_topic, serious_accessibility_violations

PLATFORM_ENV = {
    "SIGNUP_RATE_PER_MINUTE": "0",
    "FINALISE_GRACE_S": "0",
    "FINALISE_CHECK_INTERVAL_S": "1",
    "ATTENDANCE_MIN_MINUTES": "3",
    "BEACON_MIN_INTERVAL_S": "0",  # the test's beacons come faster than a player's
}
TITLE = "Terugkijken telt: een STO-webinar"
ANNA = Person("Annelies Terugkijker", "a.terugkijker@replaycollege.nl", "Replay College Assen")
BERT = Person("Bertus Kortkijker", "b.kortkijker@replaycollege.nl", "Replay College Assen")


async def replay_beacons(
    platform: Platform, event_id: str, viewer: str, positions: list[float], token: str | None
) -> int:
    """A replay player's join and heartbeats at these positions, as one POST; its status."""
    answer = await platform.gateway.post(
        "/events/api/beacons",
        json=[
            {
                "event_id": event_id,
                "viewer_id": viewer,
                **({"viewer_token": token} if token else {}),
                "action": "join" if n == 0 else "heartbeat",
                "mode": "replay",
                "position_s": position,
                "client_ts": datetime.now(UTC).isoformat(),
            }
            for n, position in enumerate(positions)
        ],
    )
    return answer.status_code


async def sql(platform: Platform, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def recorded_on_the_topic(platform: Platform, event_id: str) -> list[AttendanceRecorded]:
    """Every attendance.recorded of the event now on the analytics topic, read raw."""
    found = []
    for record in await read_topic(platform.kafka, ANALYTICS.name, ANALYTICS.partitions):
        if header(record.headers, "type") != "attendance.recorded":
            continue
        message = decode(record.value)
        if isinstance(message, AttendanceRecorded) and str(message.event_id) == event_id:
            assert header(record.headers, "version") == "2"
            found.append(message)
    return found


async def test_a_replay_on_a_later_day_counts_and_brings_a_certificate_anyone_can_check(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, title=TITLE)
    event = uuid.UUID(event_id)
    await api_sign_up(platform, event_id, ANNA)
    await api_sign_up(platform, event_id, BERT)
    anna = await eventually(lambda: viewer_of(platform, ANNA.email), what="Anna in analytics")
    bert = await eventually(lambda: viewer_of(platform, BERT.email), what="Bert in analytics")
    assert (await platform.organiser.post(f"/api/events/{event_id}/go-live")).status_code == 200
    assert (
        await platform.organiser.post(f"/api/events/{event_id}/end", json={})
    ).status_code == 200
    await eventually(
        lambda: _when(platform.organiser_json(f"/analytics/api/events/{event_id}/figures"),
                      lambda f: f["final"]),
        what="the finalisation", timeout_s=60,
    )  # fmt: skip
    await sql(
        platform,
        """UPDATE analytics.tracked_events SET starts_at = starts_at - interval '2 days',
               ends_at = ends_at - interval '2 days',
               went_live_at = went_live_at - interval '2 days',
               ended_at = ended_at - interval '2 days'
           WHERE event_id = $1""",
        event,
    )

    # Two days later: Anna watches minutes 0-3 of the recording (minute 1 twice), Bert one
    # minute, someone without a link two. The endpoint takes replay beacons once it knows
    # the broadcast ended.
    secret = platform.link_secret
    anna_token = links.watch_token(secret, event, anna)
    await eventually(
        lambda: _is(replay_beacons(platform, event_id, anna, [0, 60, 90, 75, 120, 180],
                                   anna_token), 204),
        what="the beacon endpoint to take replay beacons",
    )  # fmt: skip
    assert (
        await replay_beacons(
            platform, event_id, bert, [0, 30], links.watch_token(secret, event, bert)
        )
        == 204
    )
    assert await replay_beacons(platform, event_id, "anoniem-terug", [0, 70], None) == 204

    shown = await eventually(
        lambda: _when(
            platform.organiser_json(f"/analytics/api/events/{event_id}/figures"),
            lambda f: f["certificates"] == 1 and f["watch_minutes_replay"] == 4 + 1 + 2,
        ),
        what="the replay in the figures and Anna's certificate",
        timeout_s=90,
    )
    assert shown["views_replay"] == 3
    assert shown["unique_viewers"] == 3
    assert (shown["funnel"]["attended_live"], shown["funnel"]["attended_replay"]) == (0, 1)
    assert (shown["min_minutes_for_attendance"], shown["replay_attendance_days"]) == (3, 30)

    async with platform.organiser_browser() as organiser:
        dashboard = (await organiser.get(f"/analytics/dashboard/{event_id}")).text
        listing = (await organiser.get(f"/analytics/dashboard/{event_id}/aanwezigheid")).text
    assert '<dd id="minutes-replay">7</dd>' in dashboard
    assert '<dd id="views-replay">3</dd>' in dashboard
    assert "live 0, terugkijken 1" in dashboard
    assert "minstens 3 minuten van de opname binnen 30 dagen na afloop" in dashboard
    anna_row = next(r for r in listing.split("<tr>") if ANNA.name in r)
    assert "terugkijken" in anna_row
    assert anna_row.rstrip().endswith("<td>ja</td></tr>")  # a certificate
    assert next(r for r in listing.split("<tr>") if BERT.name in r).count("<td>nee</td>") >= 2

    # Anna's certificate, from her own link, in her browser.
    [registration] = await sql(
        platform,
        "SELECT registration_id FROM analytics.registrants WHERE viewer_id = $1",
        anna,
    )
    certificate_url = links.PersonalLinks(
        secret, PublicUrls(platform.stack.config.public_base_url)
    ).certificate(registration["registration_id"])
    context = await browser.new_context()
    try:
        page = await context.new_page()
        answer = await page.goto(certificate_url)
        assert answer is not None
        assert answer.status == 200
        text = await page.inner_text("main")
        assert ANNA.name in text
        assert TITLE in text
        # Her minutes as counted when the refresh found her (3 or more; her beacons may
        # arrive in two batches).
        assert re.search(r"Teruggekeken\s+[34] minuten", text), text
        code = (await page.inner_text("#controlecode")).strip()
        assert len(code) == 11
        assert "/analytics/certificaat/controle" in text
        assert await serious_accessibility_violations(page) == []
    finally:
        await context.close()

    # Anyone else, in a browser of their own: the code shows the name and the event only.
    stranger = await browser.new_context()
    try:
        page = await stranger.new_page()
        base = platform.stack.config.public_base_url
        await page.goto(f"{base}/analytics/certificaat/controle")
        await page.get_by_label("Controlecode").fill(code.lower())
        await page.get_by_role("button", name="Controleren").click()
        await expect(page.locator("#uitkomst")).to_have_text("Dit certificaat is echt")
        checked = await page.inner_text("main")
        assert ANNA.name in checked
        assert TITLE in checked
        for never in ("minuten", ANNA.email, ANNA.school, str(registration["registration_id"])):
            assert never not in checked, never
        assert await serious_accessibility_violations(page) == []
        await page.goto(f"{base}/analytics/certificaat/controle?code=ZZZZZ-ZZZZZ")
        await expect(page.locator("#uitkomst")).to_have_text("Onbekende code")
    finally:
        await stranger.close()

    # An independent client reads the topic: one attendance.recorded v2, for Anna.
    messages = await eventually(
        lambda: recorded_on_the_topic(platform, event_id),
        what="attendance.recorded on the analytics topic",
        timeout_s=60,
    )
    # More of the recording, and the same beacons again: the figures move, no new message.
    await replay_beacons(platform, event_id, anna, [0, 60, 240, 300], anna_token)
    await eventually(
        lambda: _when(
            platform.organiser_json(f"/analytics/api/events/{event_id}/figures"),
            lambda f: f["watch_minutes_replay"] == 6 + 1 + 2,
        ),
        what="Anna's further minutes in the figures",
    )
    await eventually(
        lambda: _stale_cleared(platform, event), what="the refresh after her further minutes"
    )
    messages = await recorded_on_the_topic(platform, event_id)
    assert len(messages) == 1, messages
    [message] = messages
    assert str(message.registration_id) == str(registration["registration_id"])
    assert (message.attended_as, message.certificate, message.attended) == ("replay", True, True)
    assert message.minutes_live == 0
    assert message.minutes_replay in (3, 4)
    figures(
        "certificates e2e: replay 2 days after the end through the beacon API -> 7 replay "
        "minutes by the recording, 1 replay attendee, 1 certificate checked by code in a "
        "second browser, 1 attendance.recorded v2 on the topic"
    )


async def _when(value: Any, condition: Callable[[Any], bool]) -> Any:
    found = await value
    return found if condition(found) else None


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def _stale_cleared(platform: Platform, event: uuid.UUID) -> bool:
    rows = await sql(
        platform,
        "SELECT 1 FROM analytics.tracked_events WHERE event_id = $1 AND NOT figures_stale",
        event,
    )
    return bool(rows)
