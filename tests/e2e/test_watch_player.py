"""The watch page from outside: a real HLS stream, made by ffmpeg and served on loopback, played
in Chromium through the gateway, natively and with hls.js; the beacons read back from Kafka
follow the player, not the page. A stream that does not answer says so and sends nothing. Every
state of the page (before the start, live, the replay to come, the replay, cancelled) passes
axe-core, and a stream address that is not http(s) is refused at entry.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from stolive_shared import links
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.topics import VIEWER_ACTIVITY
from stolive_shared.contracts.viewer_activity import ViewerBeacon
from stolive_shared.urls import PublicUrls
from tests.e2e.conftest import Platform, known_to_registrations
from tests.e2e.streams import PLAYLIST, StreamServer, make_hls, serve
from tests.support import eventually, read_topic, serious_accessibility_violations

HEARTBEAT_S = 6  # ?hartslag=: above the 5 s throttle, so no heartbeat is refused as too soon
# Makes the browser say it cannot play HLS itself, as Firefox does: the page takes hls.js.
WITHOUT_NATIVE_HLS = """(() => {
  const own = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /mpegurl/i.test(type) ? "" : own.call(this, type);
  };
})();"""
VIDEO = "document.getElementById('video')"
STATUS = "document.getElementById('kijkstatus').textContent"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes of test pattern and tone as HLS: the broadcast and the replay."""
    folder = tmp_path_factory.mktemp("recording")
    make_hls(folder, seconds=120)
    return folder


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory, recording: Path) -> Iterator[StreamServer]:
    with serve(tmp_path_factory.mktemp("cdn")) as server:
        server.publish(recording, "live")
        yield server


async def broadcast(
    platform: Platform,
    title: str,
    steps: tuple[str, ...],
    *,
    starts_in: timedelta = timedelta(days=1),
    **fields: Any,
) -> str:
    """An hour-long webinar with ``fields``, taken through ``steps`` (publish, go-live, end)."""
    starts = datetime.now(UTC) + starts_in
    created = await platform.organiser.post(
        "/api/events",
        json={
            "kind": "webinar",
            "title": title,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            **fields,
        },
    )
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    for step in steps:
        answer = await platform.organiser.post(f"/api/events/{event_id}/{step}", json={})
        assert answer.status_code == 200, answer.text
    if "publish" in steps:
        await eventually(
            lambda: known_to_registrations(platform, event_id),
            what="the registrations service to learn the webinar",
        )
    return event_id


async def webinar(
    platform: Platform,
    title: str,
    *,
    stream_url: str | None,
    go_live: bool = True,
    starts_in: timedelta = timedelta(days=2),
) -> str:
    steps = ("publish", "go-live") if go_live else ("publish",)
    return await broadcast(platform, title, steps, starts_in=starts_in, stream_url=stream_url)


def watch_link(platform: Platform, event_id: str, viewer: str) -> str:
    base = platform.stack.config.public_base_url
    link = links.watch_url(base, platform.link_secret, uuid.UUID(event_id), viewer)
    return f"{link}&hartslag={HEARTBEAT_S}"


async def beacons_of(platform: Platform, event_id: str, viewer: str) -> list[ViewerBeacon]:
    records = await read_topic(platform.kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions)
    found = []
    for record in records:
        if record.key == event_id.encode():
            message = decode(record.value)
            assert isinstance(message, ViewerBeacon)
            if message.viewer_id == viewer:
                found.append(message)
    return sorted(found, key=lambda b: b.received_at)


def having(
    platform: Platform, event_id: str, viewer: str, test: Callable[[list[str]], bool]
) -> Callable[[], Any]:
    """A probe for ``eventually``: the viewer's beacons once their actions pass ``test``."""

    async def probe() -> list[ViewerBeacon] | None:
        mine = await beacons_of(platform, event_id, viewer)
        return mine if test([b.action for b in mine]) else None

    return probe


def starts_with(*actions: str) -> Callable[[list[str]], bool]:
    return lambda seen: seen[: len(actions)] == list(actions)


@pytest.fixture
async def watcher(browser: Any) -> AsyncIterator[Callable[..., Any]]:
    """New browser contexts (one viewer each), closed after the test; each page's CSP
    violations are kept in ``page.csp_violations``, all its console lines in ``page.console``."""
    contexts: list[Any] = []

    async def open_page(*, native: bool = True) -> Any:
        context = await browser.new_context()
        contexts.append(context)
        if not native:
            await context.add_init_script(WITHOUT_NATIVE_HLS)
        page = await context.new_page()
        lines: list[str] = []
        violations: list[str] = []

        def heard(message: Any) -> None:
            lines.append(f"{message.type}: {message.text}")
            if "Content Security Policy" in message.text:
                violations.append(message.text)

        page.on("console", heard)
        page.console, page.csp_violations = lines, violations
        return page

    yield open_page
    for context in contexts:
        await context.close()


# What the video element was doing, for a wait that ran out: enough to tell a click that did not
# start the player from a player that started and stalled.
PLAYER_STATE = f"""() => {{
  const v = {VIDEO};
  if (!v) {{ return null; }}
  const ranges = [];
  for (let i = 0; i < v.buffered.length; i++) {{
    ranges.push([v.buffered.start(i), v.buffered.end(i)]);
  }}
  return {{ paused: v.paused, readyState: v.readyState, networkState: v.networkState,
    currentTime: v.currentTime, buffered: ranges, error: v.error && v.error.message,
    status: (document.getElementById('kijkstatus') || {{}}).textContent }};
}}"""


async def until(page: Any, condition: str, timeout_s: float = 30) -> None:
    """Wait until ``condition`` (JavaScript) holds in the page. Given as a function: the page's
    CSP forbids the eval a bare expression would need. A wait that runs out says what the
    player and the console said."""
    try:
        await page.wait_for_function(f"() => {condition}", timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        try:
            state = await page.evaluate(PLAYER_STATE)
        except PlaywrightError as unreadable:  # a page that crashed or went: say that instead
            state = f"unreadable ({unreadable})"
        console = getattr(page, "console", [])[-20:]
        raise AssertionError(
            f"{condition!r} did not hold within {timeout_s} s; player {state}; console {console}"
        ) from None


async def status_of(page: Any) -> str:
    text: str = await page.locator("#kijkstatus").inner_text()
    return " ".join(text.split())


@pytest.mark.parametrize("way", ["native", "hls.js"])
async def test_a_real_hls_stream_plays_and_the_beacons_follow_the_player(
    platform: Platform,
    stream: StreamServer,
    watcher: Callable[..., Any],
    way: str,
    figures: Callable[[str], None],
) -> None:
    event_id = await webinar(
        platform, f"Echte stream ({way})", stream_url=stream.url(f"live/{PLAYLIST}")
    )
    first, second = f"v_{uuid.uuid4().hex[:24]}", f"v_{uuid.uuid4().hex[:24]}"
    page = await watcher(native=way == "native")
    await page.goto(watch_link(platform, event_id, first))
    assert await page.evaluate("window.stoPlayer.native") is (way == "native")
    await until(page, f"{VIDEO}.readyState >= 1")  # the manifest is in, not playing
    assert await status_of(page) == "De uitzending is live."
    assert await serious_accessibility_violations(page) == []
    # The page is open and its player ready: a viewer who has not pressed play is not counted.
    assert await beacons_of(platform, event_id, first) == []

    pressed = datetime.now(UTC)
    clicked = time.monotonic()
    await page.locator("#video").click()
    await until(page, f"{VIDEO}.currentTime > 2")
    started = await eventually(
        having(platform, event_id, first, starts_with("join", "heartbeat", "heartbeat")),
        what="a join and two heartbeats while the video plays",
    )
    join = started[0]
    assert join.received_at >= pressed
    assert join.mode == "live"
    position = await page.evaluate(f"{VIDEO}.currentTime")
    figures(
        f"watch page ({way}): play pressed -> video time {position:.1f} s and a join + 2 "
        f"heartbeats ({HEARTBEAT_S} s) read back from Kafka in {time.monotonic() - clicked:.1f} s;"
        " 0 beacons before play"
    )

    # A second viewer watches on; the first pauses: a leave, then no heartbeat from them.
    other = await watcher(native=way == "native")
    await other.goto(watch_link(platform, event_id, second))
    await until(other, f"{VIDEO}.readyState >= 1")
    await other.locator("#video").click()
    await eventually(having(platform, event_id, second, starts_with("join")), what="the 2nd join")

    await page.locator("#video").click()
    assert await page.evaluate(f"{VIDEO}.paused")
    left = await eventually(
        having(platform, event_id, first, lambda seen: seen[-1] == "leave"),
        what="the leave sent on pause",
    )
    assert await page.evaluate("window.stoPlayer.session()") == "idle"
    pause_at = left[-1].received_at

    # The other viewer's heartbeats are the clock: two of them after the pause.
    async def two_heartbeats_later() -> bool:
        theirs = await beacons_of(platform, event_id, second)
        return len([b for b in theirs if b.action == "heartbeat" and b.received_at > pause_at]) > 1

    await eventually(two_heartbeats_later, what="two heartbeats of the other viewer", timeout_s=60)
    after = [
        b.action for b in await beacons_of(platform, event_id, first) if b.received_at > pause_at
    ]
    assert after == []

    # Playing again is a new session; leaving the page closes it with navigator.sendBeacon.
    await page.locator("#video").click()
    await eventually(
        having(platform, event_id, first, lambda seen: seen.count("join") == 2),
        what="a new join after playing again",
    )
    await page.goto("about:blank")
    await eventually(
        having(platform, event_id, first, lambda seen: seen.count("leave") == 2),
        what="the leave sent by navigator.sendBeacon",
    )
    assert page.csp_violations == []
    assert other.csp_violations == []


async def test_a_hidden_tab_counts_while_it_plays_with_sound(
    platform: Platform, stream: StreamServer, watcher: Callable[..., Any]
) -> None:
    """The page is hidden by overriding ``document.hidden`` (headless Chromium has no tabs to
    switch): what the script sees when a viewer switches tabs."""
    event_id = await webinar(
        platform, "Op de achtergrond", stream_url=stream.url(f"live/{PLAYLIST}")
    )
    viewer = f"v_{uuid.uuid4().hex[:24]}"
    page = await watcher()
    await page.goto(watch_link(platform, event_id, viewer))
    await until(page, f"{VIDEO}.readyState >= 1")
    await page.locator("#video").click()
    await eventually(having(platform, event_id, viewer, starts_with("join")), what="the join")

    hidden_at = datetime.now(UTC)
    await page.evaluate(
        "Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )

    # Hidden, with sound: still watching, heartbeats go on.
    async def heartbeat_while_hidden() -> bool:
        mine = await beacons_of(platform, event_id, viewer)
        return any(b.action == "heartbeat" and b.received_at > hidden_at for b in mine)

    await eventually(heartbeat_while_hidden, what="a heartbeat from the hidden tab with sound")
    assert await page.evaluate("window.stoPlayer.session()") == "watching"
    # Hidden and muted: a leave. Sound again: a new join.
    await page.evaluate(f"{VIDEO}.muted = true")
    await eventually(
        having(platform, event_id, viewer, lambda seen: seen[-1] == "leave"),
        what="the leave of a hidden, muted tab",
    )
    assert await page.evaluate("window.stoPlayer.session()") == "unseen"
    await page.evaluate(f"{VIDEO}.muted = false")
    await eventually(
        having(platform, event_id, viewer, lambda seen: seen.count("join") == 2),
        what="the join when it is heard again",
    )


@pytest.mark.parametrize("way", ["native", "hls.js"])
async def test_a_stream_that_does_not_answer_says_so_and_sends_no_heartbeat(
    platform: Platform,
    stream: StreamServer,
    recording: Path,
    watcher: Callable[..., Any],
    way: str,
) -> None:
    later = f"later-{way}/{PLAYLIST}"
    event_id = await webinar(
        platform, f"Nog niet in de lucht ({way})", stream_url=stream.url(later)
    )
    viewer = f"v_{uuid.uuid4().hex[:24]}"
    page = await watcher(native=way == "native")
    await page.goto(watch_link(platform, event_id, viewer))
    await until(page, f"{STATUS}.includes('De uitzending is nog niet beschikbaar')")
    assert await serious_accessibility_violations(page) == []
    await page.locator("#video").click()  # the viewer tries anyway
    # Two more tries, a heartbeat interval apart: still nothing to play, nothing sent.
    await until(page, "window.stoPlayer.attempts() >= 3", timeout_s=60)
    await eventually(lambda: stream.served[f"/{later}"] >= 3, what="the third request")
    assert "De uitzending is nog niet beschikbaar" in await status_of(page)
    assert await beacons_of(platform, event_id, viewer) == []
    assert await page.evaluate("window.stoPlayer.session()") == "idle"

    # The encoder comes on air: the page finds the stream at its next try, and it plays.
    stream.publish(recording, f"later-{way}")
    await until(page, f"{STATUS}.trim() === 'De uitzending is live.'", timeout_s=60)
    await page.evaluate(f"{VIDEO}.play()")
    await until(page, f"{VIDEO}.currentTime > 1")
    await eventually(having(platform, event_id, viewer, starts_with("join")), what="the join")
    assert page.csp_violations == []


async def test_every_state_of_the_watch_page_in_a_browser(
    platform: Platform,
    stream: StreamServer,
    watcher: Callable[..., Any],
    figures: Callable[[str], None],
) -> None:
    base = platform.stack.config.public_base_url
    hls = stream.url(f"live/{PLAYLIST}")
    checked: list[str] = []

    async def accessible(page: Any, state: str) -> None:
        assert await serious_accessibility_violations(page) == [], state
        assert page.csp_violations == [], state
        checked.append(state)

    # Before the start: a countdown in Dutch time, the sign-up form, the calendar.
    upcoming = await webinar(
        platform,
        "STO LIVE komt eraan",
        stream_url=hls,
        go_live=False,
        starts_in=timedelta(days=2, hours=3),
    )
    page = await watcher()
    await page.goto(f"{base}/events/watch/{upcoming}")
    assert "nog niet begonnen" in await status_of(page)
    assert await page.locator("#beeld").is_hidden()
    assert await page.locator("#aftellen").inner_text() == "Nog 2 dagen en 3 uur"
    starts = datetime.fromisoformat(
        await page.locator("#aftellen").get_attribute("data-starts-at") or ""
    ).astimezone(ZoneInfo("Europe/Amsterdam"))
    heading = await page.get_by_role("heading", level=2).first.inner_text()
    assert heading.endswith(f"{starts.year}, {starts:%H:%M}")
    assert (await page.locator(".meta").inner_text()).endswith("(Nederlandse tijd)")
    sign_up = page.get_by_role("link", name="Aanmelden", exact=True)
    assert await sign_up.get_attribute("href") == PublicUrls(base).sign_up_form(upcoming)
    calendar = await page.get_by_role("link", name="Zet in je agenda").get_attribute("href")
    ics = await platform.gateway.get(calendar or "")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "SUMMARY:STO LIVE komt eraan" in ics.text
    await accessible(page, "upcoming, anonymous")
    await page.goto(watch_link(platform, upcoming, f"v_{uuid.uuid4().hex[:24]}"))
    assert await page.get_by_role("link", name="Aanmelden", exact=True).count() == 0
    await accessible(page, "upcoming, personal link")

    # Live, with an address that is neither HLS nor an embed: a link, and no beacons.
    elsewhere = await webinar(platform, "Live in Teams", stream_url="https://teams.example/x")
    await page.goto(f"{base}/events/watch/{elsewhere}")
    link = page.get_by_role("link", name="Open de uitzending", exact=True)
    assert await link.get_attribute("href") == "https://teams.example/x"
    await accessible(page, "live, a link")

    # Live on YouTube: its privacy-enhanced player (unreachable here: the page still works).
    youtube = await webinar(
        platform, "Live op YouTube", stream_url="https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    )
    await page.goto(f"{base}/events/watch/{youtube}")
    src = await page.locator("iframe#embed").get_attribute("src") or ""
    assert src.startswith("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?enablejsapi=1")
    assert await page.get_by_role("link", name="Open de uitzending op YouTube").count() == 1
    await accessible(page, "live, YouTube")

    # Ended, the replay still to come; then ended with the replay, played by the same player.
    pending = await webinar(platform, "Terugblik volgt", stream_url=hls)
    await platform.organiser.post(f"/api/events/{pending}/end", json={})
    await page.goto(f"{base}/events/watch/{pending}")
    assert await status_of(page) == "De uitzending is afgelopen. De terugblik volgt op deze pagina."
    await accessible(page, "ended, replay to come")

    replayed = await webinar(platform, "Terugblik staat klaar", stream_url=hls)
    ended = await platform.organiser.post(
        f"/api/events/{replayed}/end", json={"replay_url": stream.url(f"live/{PLAYLIST}?terug=1")}
    )
    assert ended.status_code == 200, ended.text
    viewer = f"v_{uuid.uuid4().hex[:24]}"
    await page.goto(watch_link(platform, replayed, viewer))
    await until(page, f"{VIDEO}.readyState >= 1")
    assert await status_of(page) == "De uitzending is afgelopen. Je kijkt de terugblik."
    await accessible(page, "ended, replay")
    await page.locator("#video").click()
    await until(page, f"{VIDEO}.currentTime > 1")
    (join, *_) = await eventually(
        having(platform, replayed, viewer, starts_with("join")), what="the replay's join"
    )
    assert join.mode == "replay"

    # Cancelled: said so, on the same address.
    cancelled = await webinar(platform, "Gaat niet door", stream_url=hls, go_live=False)
    answer = await platform.organiser.post(f"/api/events/{cancelled}/cancel", json={"reason": ""})
    assert answer.status_code == 200, answer.text
    await page.goto(f"{base}/events/watch/{cancelled}")
    assert await status_of(page) == "Deze uitzending is geannuleerd en gaat niet door."
    await accessible(page, "cancelled")

    figures(
        f"watch page states in Chromium: {len(checked)} checked ("
        + "; ".join(checked)
        + "), 0 serious or critical axe violations, 0 CSP violations"
    )


async def test_a_stream_address_that_is_not_http_is_refused_at_entry(
    platform: Platform, browser: Any
) -> None:
    starts = datetime.now(UTC) + timedelta(days=3)
    refused = await platform.organiser.post(
        "/api/events",
        json={
            "kind": "webinar",
            "title": "Stream via rtmp",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "stream_url": "rtmp://live.sto.example/app/stream",
        },
    )
    assert refused.status_code == 422
    (problem,) = refused.json()["detail"]
    assert problem["loc"] == ["body", "stream_url"]
    assert problem["msg"] == "Het adres van de uitzending begint met https:// of http://."

    context = await browser.new_context()
    try:
        page = await context.new_page()
        await platform.log_in(page)
        await page.goto(f"{platform.stack.config.public_base_url}/events/organiser/nieuw")
        local = starts.astimezone(ZoneInfo("Europe/Amsterdam"))
        await page.get_by_label("Soort").select_option("webinar")
        await page.get_by_label("Titel", exact=True).fill("Stream via rtmp")
        await page.get_by_label("Begint op").fill(f"{local:%Y-%m-%d}T15:30")
        await page.get_by_label("Eindigt op").fill(f"{local:%Y-%m-%d}T16:00")
        await page.get_by_label("Stream-adres (optioneel)").fill("rtmp://live.sto.example/app")
        await page.get_by_role("button", name="Opslaan als concept").click()
        await page.wait_for_load_state()
        assert re.search(r"/organiser/nieuw$", page.url)
        field = page.get_by_label("Stream-adres (optioneel)")
        assert await field.input_value() == "rtmp://live.sto.example/app"
        assert "Dit is geen geldig webadres (begin met https://)." in await page.content()
    finally:
        await context.close()
