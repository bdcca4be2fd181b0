"""In a real browser, through the gateway: an organiser plans a broadcast on the pages, viewers
watch it (a real HLS stream, made by ffmpeg and served on loopback), and the watch page's beacons
arrive on Kafka. The pages pass axe-core.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stolive_shared import links
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from tests.e2e.conftest import Platform
from tests.e2e.streams import PLAYLIST, StreamServer, make_hls, serve
from tests.support import eventually, read_topic, serious_accessibility_violations

REGIONS_CSV = "code;name;province;supra_region\ndrenthe;Drenthe;Drenthe;Noord-Nederland\n"


async def beacons_of(platform: Platform, event_id: str) -> list[ViewerBeacon]:
    records = await read_topic(platform.kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions)
    found = []
    for record in records:
        if record.key == event_id.encode():
            message = decode(record.value)
            assert isinstance(message, ViewerBeacon)
            found.append(message)
    return found


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamServer]:
    root = tmp_path_factory.mktemp("cdn")
    make_hls(root / "live", seconds=120)
    with serve(root) as server:
        yield server


async def press_play(page: Any) -> None:
    """The viewer clicks the video (its controls play and pause); it plays."""
    await page.wait_for_function("() => document.getElementById('video').readyState >= 1")
    await page.locator("#video").click()
    await page.wait_for_function("() => document.getElementById('video').currentTime > 0.5")


def seen(beacons: list[ViewerBeacon], viewer: str) -> list[str]:
    return [b.action for b in beacons if b.viewer_id == viewer]


async def test_a_broadcast_planned_on_the_pages_is_watched_and_reported_to_kafka(
    platform: Platform, browser: Any, stream: StreamServer, figures: Callable[[str], None]
) -> None:
    base = platform.stack.config.public_base_url
    imported = await platform.organiser.post(
        "/api/regions/import", content=REGIONS_CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text

    organiser = await browser.new_context()
    page = await organiser.new_page()
    await page.goto(f"{base}/events/organiser/inloggen")
    assert await serious_accessibility_violations(page) == []
    await page.get_by_label("Organisatorsleutel").fill(platform.stack.organiser_token)
    await page.get_by_role("button", name="Inloggen", exact=True).click()
    await page.wait_for_url("**/events/organiser/")
    assert await serious_accessibility_violations(page) == []
    await (
        page.get_by_role("navigation", name="Organisatie")
        .get_by_role("link", name="Regio's")
        .click()
    )
    await page.wait_for_url("**/events/organiser/regios")
    assert await page.get_by_role("link", name="Drenthe").count() == 1
    assert await serious_accessibility_violations(page) == []
    await page.get_by_role("link", name="Terug naar alle evenementen").click()

    await page.get_by_role("link", name="Nieuw evenement plannen").click()
    assert await serious_accessibility_violations(page) == []
    starts = (datetime.now(UTC) + timedelta(days=2)).astimezone(ZoneInfo("Europe/Amsterdam"))
    await page.get_by_label("Soort").select_option("webinar")
    await page.get_by_label("Titel", exact=True).fill("STO LIVE in de browser")
    await page.get_by_label("Begint op").fill(f"{starts:%Y-%m-%d}T15:30")
    await page.get_by_label("Eindigt op").fill(f"{starts:%Y-%m-%d}T16:00")
    await page.get_by_label("Stream-adres (optioneel)").fill(stream.url(f"live/{PLAYLIST}"))
    await page.get_by_role("button", name="Opslaan als concept").click()
    await page.wait_for_url("**/events/organiser/evenementen/**")
    event_id = page.url.split("/evenementen/")[1].split("?")[0]
    await page.get_by_role("button", name="Publiceren").click()
    await page.wait_for_url("**?publiceren=1")

    # A viewer opens the watch page before the broadcast starts: it waits, sending nothing.
    viewer = await browser.new_context()
    watch = await viewer.new_page()
    personal = "v_" + "e2e0" * 6  # a registration's viewer id, in its signed watch link
    link = links.watch_url(base, platform.link_secret, uuid.UUID(event_id), personal)
    await watch.goto(f"{link}&hartslag=5")
    status = watch.get_by_role("status")
    assert "nog niet begonnen" in await status.inner_text()
    assert await serious_accessibility_violations(watch) == []

    await page.get_by_role("button", name="Live zetten").click()
    went_live = time.monotonic()
    await page.wait_for_url("**?live=1")
    assert await page.locator("#status").inner_text() == "Nu live (versie 3)"
    assert await serious_accessibility_violations(page) == []
    await organiser.close()

    # The waiting page notices by itself and starts the player (this browser allows autoplay);
    # the first frame played reports the join.
    joined = await eventually(
        lambda: _having(platform, event_id, personal, ["join"]), what="the join on Kafka"
    )
    figures(
        "organiser clicks 'Live zetten' -> the waiting watch page's join read back from Kafka: "
        f"{time.monotonic() - went_live:.2f} s (page polls every 5 s here; 1 s topic read)"
    )
    assert await status.inner_text() == "De uitzending is live."
    assert await serious_accessibility_violations(watch) == []
    assert joined[0].mode == "live"
    await eventually(
        lambda: _having(platform, event_id, personal, ["join", "heartbeat"]),
        what="a heartbeat after 5 s",
    )
    await watch.goto("about:blank")  # pagehide: the player says goodbye with sendBeacon
    await eventually(
        lambda: _having(platform, event_id, personal, ["join", "heartbeat", "leave"]),
        what="the leave sent by navigator.sendBeacon",
    )

    # Without a join link the browser keeps one anonymous id across visits; a visit counts
    # once its viewer presses play.
    await watch.goto(f"{base}/events/watch/{event_id}")
    first_id = await watch.evaluate("window.stoPlayer.viewer")
    assert first_id.startswith("anon-")
    await press_play(watch)
    await watch.reload()
    assert await watch.evaluate("window.stoPlayer.viewer") == first_id
    await press_play(watch)
    assert await watch.evaluate("window.stoPlayer.heartbeatMs") == 30_000
    await eventually(
        lambda: _having(platform, event_id, first_id, ["join", "leave", "join"]),
        what="the anonymous viewer's join, leave on reload, and join again",
    )
    await viewer.close()

    # A link whose signature does not check out makes its browser an anonymous viewer.
    stranger = await browser.new_context()
    forged = await stranger.new_page()
    await forged.goto(link.replace(f"{personal}.", f"{personal}.x", 1))
    assert (await forged.evaluate("window.stoPlayer.viewer")).startswith("anon-")
    await stranger.close()


async def _having(
    platform: Platform, event_id: str, viewer: str, actions: list[str]
) -> list[ViewerBeacon] | None:
    beacons = await beacons_of(platform, event_id)
    mine = [b for b in beacons if b.viewer_id == viewer]
    return mine if seen(mine, viewer)[: len(actions)] == actions else None


async def test_the_agenda_and_region_pages_are_accessible(platform: Platform, browser: Any) -> None:
    await platform.organiser.post(
        "/api/regions/import", content=REGIONS_CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    starts = datetime.now(UTC) + timedelta(days=6)
    meeting = await platform.organiser.post(
        "/api/events",
        json={
            "kind": "regional_meeting",
            "title": "Regiobijeenkomst Drenthe in de agenda",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "venue": "Drenthe College, Assen",
            "region_codes": ["drenthe"],
            "capacity": 30,
        },
    )
    await platform.organiser.post(f"/api/events/{meeting.json()['id']}/publish")
    base = platform.stack.config.public_base_url
    page = await browser.new_page()
    try:
        await page.goto(f"{base}/events/agenda")
        assert await page.get_by_role("heading", level=1).inner_text() == (
            "Agenda van Sterk Techniekonderwijs"
        )
        assert await serious_accessibility_violations(page) == []
        await page.get_by_role("link", name="Drenthe", exact=True).click()
        await page.wait_for_url("**/events/regio/drenthe")
        assert await page.get_by_role("heading", level=1).inner_text() == "Agenda STO-regio Drenthe"
        assert "Regiobijeenkomst Drenthe in de agenda" in await page.content()
        assert await serious_accessibility_violations(page) == []
        feed = await platform.gateway.get("/events/regio/drenthe/agenda.ics")
        assert b"Regiobijeenkomst Drenthe in de agenda" in feed.content
    finally:
        await page.close()
