"""Replays and captions from outside, through the gateway in Chromium: WebVTT captions served
on loopback (from another origin than the stream) load as the video's text track with their
cues, natively and with hls.js; an organiser publishes the replay of an ended broadcast and
its captions on the event hub, which puts ``event.replay_published`` on the events topic; a
viewer in another browser plays it with those captions and the raw beacons on the viewer topic
carry the player's position, increasing; the public "Terugblikken" page lists it, passes
axe-core and fits a 360 px phone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.events import EventReplayPublished
from stolive_shared.contracts.topics import EVENTS
from tests.e2e import test_watch_player
from tests.e2e.conftest import Platform
from tests.e2e.streams import PLAYLIST, StreamServer, serve
from tests.e2e.test_watch_player import HEARTBEAT_S, VIDEO, broadcast, having, until
from tests.support import eventually, read_topic, serious_accessibility_violations

CUES = [
    ("00:00:00.000", "00:00:04.000", "Welkom bij STO LIVE."),
    ("00:00:04.000", "00:00:08.000", "Vandaag: techniek in het vmbo."),
    ("00:00:08.000", "00:01:30.000", "Stel je vragen in de chat."),
]
PHONE = {"width": 360, "height": 740}
# A viewer's browser (fresh contexts, CSP violations kept): the watch player tests' fixture.
viewer_page = test_watch_player.watcher
# Two minutes of test pattern and tone as HLS, served on loopback: the broadcast and replay.
recording, stream = test_watch_player.recording, test_watch_player.stream


@pytest.fixture(scope="module")
def captions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamServer]:
    """A second loopback origin serving ``nl.vtt``: the page's CSP must allow it by itself."""
    root = tmp_path_factory.mktemp("captions")
    lines = ["WEBVTT", ""]
    for start, end, text in CUES:
        lines += [f"{start} --> {end}", text, ""]
    (root / "nl.vtt").write_text("\n".join(lines), encoding="utf-8")
    with serve(root) as server:
        yield server


async def test_the_replays_page_is_empty_then_lists_the_replays_newest_first_on_a_phone(
    platform: Platform, stream: StreamServer, viewer_page: Callable[..., Any]
) -> None:
    base = platform.stack.config.public_base_url
    page = await viewer_page()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{base}/events/agenda")
    await (
        page.get_by_role("navigation", name="Hoofdmenu")
        .get_by_role("link", name="Terugblikken")
        .click()
    )
    await page.wait_for_url(f"{base}/events/terugblikken")
    assert "Er zijn nog geen terugblikken" in await page.locator("main").inner_text()
    assert await serious_accessibility_violations(page) == []

    replay = stream.url(f"live/{PLAYLIST}")
    first = await broadcast(
        platform, "Techniek in de regio", ("publish", "go-live"), stream_url=replay
    )
    await platform.organiser.post(f"/api/events/{first}/end", json={"replay_url": replay})
    second = await broadcast(
        platform, "Gastlessen uit het bedrijfsleven", ("publish", "go-live"), stream_url=replay
    )
    await platform.organiser.post(f"/api/events/{second}/end", json={"replay_url": replay})
    await page.reload()
    titles = await page.locator("#terugblikken h2").all_inner_texts()
    assert titles == ["Gastlessen uit het bedrijfsleven", "Techniek in de regio"]
    dates = await page.locator("#terugblikken time").all_inner_texts()
    assert all(", " in text and text.split()[0].endswith("dag") for text in dates), dates
    assert await serious_accessibility_violations(page) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.csp_violations == []
    await page.get_by_role("link", name="Techniek in de regio").click()
    await page.wait_for_url(f"{base}/events/watch/{first}")
    assert await page.get_by_role("link", name="Alle terugblikken").count() == 1


@pytest.mark.parametrize("way", ["native", "hls.js"])
async def test_webvtt_captions_load_as_the_videos_text_track(
    platform: Platform,
    stream: StreamServer,
    captions: StreamServer,
    viewer_page: Callable[..., Any],
    way: str,
) -> None:
    event_id = await broadcast(
        platform,
        f"Met ondertiteling ({way})",
        ("publish", "go-live"),
        stream_url=stream.url(f"live/{PLAYLIST}"),
        captions_url=captions.url("nl.vtt"),
    )
    page = await viewer_page(native=way == "native")
    await page.goto(f"{platform.stack.config.public_base_url}/events/watch/{event_id}")
    assert await page.evaluate("window.stoPlayer.native") is (way == "native")
    await until(page, f"{VIDEO}.readyState >= 1")  # the manifest is in, as a viewer sees it
    await page.locator("#video").click()
    await until(page, f"{VIDEO}.currentTime > 1")
    track = f"Array.from({VIDEO}.textTracks).find(t => t.kind === 'captions')"
    await until(page, f"{track} && {track}.cues && {track}.cues.length === {len(CUES)}")
    loaded = await page.evaluate(
        f"() => {{ const t = {track}; return {{ language: t.language, label: t.label,"
        f" mode: t.mode, first: t.cues[0].text }}; }}"
    )
    assert loaded == {
        "language": "nl",
        "label": "Nederlands",
        "mode": "showing",
        "first": CUES[0][2],
    }
    assert captions.served["/nl.vtt"] >= 1
    assert page.csp_violations == []
    assert await serious_accessibility_violations(page) == []


async def test_a_replay_published_on_the_hub_with_captions_plays_and_its_beacons_carry_the_position(
    platform: Platform,
    stream: StreamServer,
    captions: StreamServer,
    viewer_page: Callable[..., Any],
    figures: Callable[[str], None],
) -> None:
    base = platform.stack.config.public_base_url
    event_id = await broadcast(
        platform,
        "STO LIVE terugkijken",
        ("publish", "go-live", "end"),
        stream_url=stream.url(f"live/{PLAYLIST}"),
    )
    # The organiser publishes the replay after the end, on the event hub, with the captions
    # made from the recording.
    organiser = await viewer_page()
    await platform.log_in(organiser)
    await organiser.goto(f"{base}/events/organiser/evenementen/{event_id}/overzicht")
    replay = stream.url(f"live/{PLAYLIST}?terugblik=1")
    await organiser.get_by_label("Adres van de terugblik").fill(replay)
    await organiser.get_by_label("Ondertiteling (WebVTT)").fill(captions.url("nl.vtt"))
    await organiser.get_by_role("button", name="Terugblik publiceren").click()
    await organiser.wait_for_url(f"**/evenementen/{event_id}/overzicht?terugblik=1")
    assert "De terugblik is gepubliceerd." in await organiser.locator("main").inner_text()

    async def replay_message() -> EventReplayPublished | None:
        records = await read_topic(platform.kafka, EVENTS.name, EVENTS.partitions)
        for record in records:
            message = decode(record.value)
            if isinstance(message, EventReplayPublished) and str(message.event.event_id) == (
                event_id
            ):
                return message
        return None

    published = await eventually(replay_message, what="event.replay_published on the topic")
    assert (published.previous_replay_url, published.event.replay_url) == (None, replay)
    assert published.event.captions_url == captions.url("nl.vtt")

    # A viewer plays the replay: every beacon says where in the recording they are.
    page = await viewer_page()
    await page.goto(f"{base}/events/watch/{event_id}?hartslag={HEARTBEAT_S}")
    viewer = await page.evaluate("window.stoPlayer.viewer")
    await until(page, f"{VIDEO}.readyState >= 1")
    await page.locator("#video").click()
    # In another browser than the organiser's: the captions given after the end, from their
    # own origin.
    track = f"Array.from({VIDEO}.textTracks).find(t => t.kind === 'captions')"
    await until(page, f"{track} && {track}.cues && {track}.cues.length === {len(CUES)}")
    watched = await eventually(
        having(platform, event_id, viewer, lambda seen: seen.count("heartbeat") >= 2),
        what="a join and two heartbeats of the replay",
        timeout_s=60,
    )
    await page.locator("#video").click()  # pause: a leave, with where they stopped
    watched = await eventually(
        having(platform, event_id, viewer, lambda seen: seen[-1] == "leave"),
        what="the leave on pause",
    )
    assert [b.mode for b in watched] == ["replay"] * len(watched)
    positions = [b.position_s for b in watched]
    assert None not in positions, positions
    numbers = [p for p in positions if p is not None]
    assert numbers == sorted(numbers), numbers
    assert numbers[-2] > numbers[0], numbers
    assert numbers[-1] <= await page.evaluate(f"{VIDEO}.currentTime") + 0.2
    figures(
        "replay beacons read back from Kafka: "
        + ", ".join(f"{b.action}@{b.position_s:.1f}s" for b in watched if b.position_s is not None)
    )
    assert page.csp_violations == []


async def test_a_live_beacon_with_a_position_or_a_replay_position_beyond_a_day_is_refused(
    platform: Platform,
) -> None:
    live = await broadcast(platform, "Live zonder positie", ("publish", "go-live"))
    beacon = {
        "event_id": live,
        "viewer_id": f"anon-{uuid.uuid4().hex[:12]}",
        "action": "join",
        "mode": "live",
        "client_ts": datetime.now(UTC).isoformat(),
    }
    refused = await platform.gateway.post("/events/api/beacons", json={**beacon, "position_s": 3})
    assert refused.status_code == 422
    assert "Alleen een terugblik heeft een positie" in refused.text
    too_far = {**beacon, "mode": "replay", "position_s": 86_401}
    refused = await platform.gateway.post("/events/api/beacons", json=too_far)
    assert refused.status_code == 422
    assert "van 0 tot 86400 (24 uur)" in refused.text
