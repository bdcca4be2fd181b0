"""STO LIVE from the teacher's side, in two real browsers, with a real HLS stream (made by
ffmpeg, served on loopback) through the one address:

Anna watches the broadcast live from her manage page's watch link: the organiser's live count
follows her play and her pause. Bram misses it. The broadcast ends without a replay; the
attendance is final. Two days later (the platform's record of the broadcast moved back two
days: the clock the replay window reads) the organiser publishes the replay. Bram, the only
no-show, gets "Bekijk de terugblik" once, plays the replay from that e-mail's link in his own
browser, and so attends by replay: "Je certificaat staat klaar" arrives, and his manage page
links the certificate. Anna's certificate came with her thank-you. Each browser's
certificate names its own person only. A corrected replay address mails nobody again.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from tests.e2e import test_watch_player
from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.streams import PLAYLIST, StreamServer
from tests.e2e.test_registrations_roles import mail
from tests.e2e.test_replay_and_change_mails import mails_to, replay_known_to_notifications, text_of
from tests.e2e.test_watch_player import VIDEO, until
from tests.support import eventually

PLATFORM_ENV = {
    "SIGNUP_RATE_PER_MINUTE": "0",
    "FINALISE_GRACE_S": "0",
    "FINALISE_CHECK_INTERVAL_S": "1",
    # One minute of the broadcast, live or of the recording, is attendance here: a browser
    # test cannot watch ten.
    "ATTENDANCE_MIN_MINUTES": "1",
}
ANNA = Person("Anna Livekijker", "anna.live@kijkcollege-emmen.nl", "Kijkcollege Emmen")
BRAM = Person("Bram Laatkijker", "bram.laat@kijkcollege-emmen.nl", "Kijkcollege Emmen")
WATCH_LINK = re.compile(r"https?://\S+/events/watch/[0-9a-f-]{36}\?v=[A-Za-z0-9._-]+")
CERTIFICATE_LINK = re.compile(r"https?://\S+/analytics/certificaat/[A-Za-z0-9._-]+")

# Two minutes of test pattern and tone as HLS: the player tests' recording and server.
recording, stream, viewer_page = (
    test_watch_player.recording,
    test_watch_player.stream,
    test_watch_player.watcher,
)


async def live_viewers(platform: Platform, event_id: str) -> int:
    figures = await platform.organiser_json(f"/analytics/api/events/{event_id}/live")
    return int(figures["viewers"])


async def move_back_two_days(platform: Platform, event_id: str) -> None:
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        await conn.execute(
            """UPDATE analytics.tracked_events SET starts_at = starts_at - interval '2 days',
                   ends_at = ends_at - interval '2 days',
                   went_live_at = went_live_at - interval '2 days',
                   ended_at = ended_at - interval '2 days'
               WHERE event_id = $1""",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()


async def test_the_replay_reaches_the_no_show_and_brings_their_certificate(
    platform: Platform,
    stream: StreamServer,
    viewer_page: Callable[..., Any],
    figures: Callable[[str], None],
) -> None:
    event_id = await test_watch_player.webinar(
        platform, "STO LIVE: terugkijken telt", stream_url=stream.url(f"live/{PLAYLIST}")
    )
    for person in (ANNA, BRAM):
        await api_sign_up(platform, event_id, person)

    # Live: Anna opens her watch link from her manage page (the link in her confirmation) and
    # plays; the organiser's count follows her play and her pause.
    anna = await viewer_page()
    await anna.goto(await platform.manage_link(ANNA.email))
    await anna.get_by_role("link", name="Open je persoonlijke kijklink").click()
    await until(anna, f"{VIDEO}.readyState >= 1")
    pressed = time.monotonic()
    await anna.locator("#video").click()
    await until(anna, f"{VIDEO}.currentTime > 1")
    await eventually(lambda: _equals(live_viewers(platform, event_id), 1), what="Anna counted live")
    counted_in = time.monotonic() - pressed
    await anna.locator("#video").click()
    paused = time.monotonic()
    await eventually(
        lambda: _equals(live_viewers(platform, event_id), 0), what="Anna no longer live"
    )
    figures(
        f"live count: 1 viewer {counted_in:.1f} s after play pressed, 0 again "
        f"{time.monotonic() - paused:.1f} s after pause"
    )

    answer = await platform.organiser.post(f"/api/events/{event_id}/end", json={})
    assert answer.status_code == 200, answer.text
    await eventually(
        lambda: _final(platform, event_id), timeout_s=90, what="the attendance to be final"
    )
    thanks = await mail(platform, ANNA.email, "Bedankt")
    [anna_certificate] = CERTIFICATE_LINK.findall(text_of(thanks))
    assert mails_to(platform, BRAM, "Bedankt") == []

    # Two days later the replay is published.
    await move_back_two_days(platform, event_id)
    replay_url = stream.url(f"live/{PLAYLIST}")
    published = await platform.organiser.put(
        f"/api/events/{event_id}/replay", json={"replay_url": replay_url}
    )
    assert published.status_code == 200, published.text
    offer = await mail(platform, BRAM.email, "Bekijk de terugblik")
    [bram_link] = WATCH_LINK.findall(text_of(offer))

    bram = await viewer_page()
    await bram.goto(bram_link)
    await until(bram, f"{VIDEO}.readyState >= 1")
    await bram.locator("#video").click()
    await until(bram, f"{VIDEO}.currentTime > 2")
    ready = await mail(platform, BRAM.email, "Je certificaat staat klaar")
    [bram_certificate] = CERTIFICATE_LINK.findall(text_of(ready))
    assert bram_certificate != anna_certificate

    # Bram's manage page, in his browser, links his certificate; each certificate names its
    # own person.
    await bram.goto(await platform.manage_link(BRAM.email))
    link = bram.get_by_role("link", name="Open je certificaat")
    assert await link.get_attribute("href") == bram_certificate
    await link.click()
    assert BRAM.name in await bram.locator("main").inner_text()
    assert ANNA.name not in await bram.content()
    await anna.goto(anna_certificate)
    assert ANNA.name in await anna.locator("main").inner_text()
    assert BRAM.name not in await anna.content()

    # A corrected replay address mails nobody again; Anna, who watched live, got no offer.
    corrected = f"{replay_url}?versie=2"
    answer = await platform.organiser.put(
        f"/api/events/{event_id}/replay", json={"replay_url": corrected}
    )
    assert answer.status_code == 200, answer.text
    await eventually(
        lambda: replay_known_to_notifications(platform, event_id, corrected),
        what="notifications to handle the corrected replay",
    )
    assert len(mails_to(platform, BRAM, "terugblik")) == 1
    assert mails_to(platform, ANNA, "terugblik") == []
    assert len(mails_to(platform, BRAM, "certificaat")) == 1


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def _final(platform: Platform, event_id: str) -> bool:
    figures = await platform.organiser_json(f"/analytics/api/events/{event_id}/figures")
    return bool(figures["final"])
