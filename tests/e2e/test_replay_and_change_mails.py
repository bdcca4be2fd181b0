"""The e-mails an organiser's changes bring, from outside: the events API through the gateway,
the whole platform of real processes, the e-mails read from a real SMTP server and parsed with
Python's email package, their calendar parts as iCalendar text.

- A replay published the day after the broadcast reaches each registrant who did not watch,
  once, with a link to their own watch page; a corrected replay address mails nobody again.
  Whoever then watches enough of it there (the player's replay beacons, through the gateway)
  gets "Je certificaat staat klaar" with their certificate link, once.
- A new place or a new stream for a published meeting sends each registrant an updated
  invitation (the same UID, a higher SEQUENCE) saying what changed.
"""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import asyncpg

from stolive_shared.links import watch_viewer
from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_certificates import replay_beacons
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.e2e.test_registrations_roles import mail
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually

PLATFORM_ENV = {
    "SIGNUP_RATE_PER_MINUTE": "0",
    # The attendance is final right after the end: the replay comes "the next day".
    "FINALISE_GRACE_S": "0",
    "FINALISE_CHECK_INTERVAL_S": "1",
    "ATTENDANCE_MIN_MINUTES": "3",
    "BEACON_MIN_INTERVAL_S": "0",  # the test's beacons come faster than a player's
}
ANNA = Person("Annet Terugblik", "a.terugblik@kijkterug-college.nl", "Kijkterug College Assen")
BRAM = Person("Bram Gemist", "b.gemist@kijkterug-college.nl", "Kijkterug College Assen")
CAROL = Person("Carola Verhuist", "c.verhuist@nieuweplek.nl", "Nieuwe Plek Lyceum Emmen")
FIRST_REPLAY = "https://cdn.sterktechniekonderwijs.nl/terugblik/1.m3u8"
SECOND_REPLAY = "https://cdn.sterktechniekonderwijs.nl/terugblik/1-nagemonteerd.m3u8"
WATCH_LINK = re.compile(r"https?://\S+/events/watch/([0-9a-f-]{36})\?v=([A-Za-z0-9._-]+)")


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def invitation_of(message: EmailMessage) -> tuple[str, str, int, str]:
    """(method, UID, SEQUENCE, LOCATION) of the e-mail's one calendar part, from its text."""
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    ics = re.sub(r"\r?\n[ \t]", "", payload.decode())  # unfold continuation lines
    fields = dict(re.findall(r"^(UID|SEQUENCE|LOCATION):(.*?)\r?$", ics, re.MULTILINE))
    location = fields.get("LOCATION", "").replace("\\,", ",")
    return str(part.get_param("method")), fields["UID"], int(fields["SEQUENCE"]), location


def mails_to(platform: Platform, person: Person, words: str) -> list[EmailMessage]:
    return [e.message for e in platform.smtp.to(person.email) if words in e.subject]


async def replay_known_to_notifications(platform: Platform, event_id: str, url: str) -> bool:
    """Whether the notifications service has handled the replay message naming ``url``."""
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        known = await conn.fetchval(
            "SELECT replay_url FROM notifications.event_schedule WHERE event_id = $1",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()
    return bool(known == url)


async def test_a_replay_published_after_the_finalisation_reaches_each_no_show_once(
    platform: Platform,
) -> None:
    event_id = await published_event(platform, title="Terugblik de dag erna: een STO-webinar")
    for person in (ANNA, BRAM):
        await api_sign_up(platform, event_id, person)
        await mail(platform, person.email, "Je bent aangemeld")
    for step in ("go-live", "end"):
        answer = await platform.organiser.post(f"/api/events/{event_id}/{step}", json={})
        assert answer.status_code == 200, answer.text

    async def final() -> bool:
        figures = await platform.organiser_json(f"/analytics/api/events/{event_id}/figures")
        return bool(figures["final"])

    await eventually(final, timeout_s=90, what="the attendance to be final")
    # Final without a replay: nobody is promised one.
    assert mails_to(platform, ANNA, "terugblik") == mails_to(platform, BRAM, "terugblik") == []

    published = await platform.organiser.put(
        f"/api/events/{event_id}/replay", json={"replay_url": FIRST_REPLAY}
    )
    assert published.status_code == 200, published.text
    tokens: dict[Person, str] = {}
    for person in (ANNA, BRAM):
        replay = await mail(platform, person.email, "Bekijk de terugblik")
        text = text_of(replay)
        assert FIRST_REPLAY not in text
        [(linked_event, token)] = WATCH_LINK.findall(text)
        assert linked_event == event_id
        # Their own watch page: the token names a viewer, signed for this event.
        assert watch_viewer(platform.link_secret, uuid.UUID(event_id), token) is not None
        tokens[person] = token

    corrected = await platform.organiser.put(
        f"/api/events/{event_id}/replay", json={"replay_url": SECOND_REPLAY}
    )
    assert corrected.status_code == 200, corrected.text
    await eventually(
        lambda: replay_known_to_notifications(platform, event_id, SECOND_REPLAY),
        timeout_s=60,
        what="notifications to handle the corrected replay",
    )
    for person in (ANNA, BRAM):
        assert len(mails_to(platform, person, "terugblik")) == 1

    # Anna watches minutes 0-3 of the replay from her link; Bram does not.
    token = tokens[ANNA]
    viewer = watch_viewer(platform.link_secret, uuid.UUID(event_id), token)
    assert viewer is not None
    positions = [0.0, 60.0, 90.0, 120.0, 180.0]

    async def beacons_taken() -> bool:
        return await replay_beacons(platform, event_id, viewer, positions, token) == 204

    await eventually(beacons_taken, what="the beacon endpoint to take Anna's replay beacons")
    ready = await mail(platform, ANNA.email, "Je certificaat staat klaar")
    assert re.search(r"https?://\S+/analytics/certificaat/[A-Za-z0-9._-]+", text_of(ready))
    assert mails_to(platform, BRAM, "certificaat") == []
    assert len(mails_to(platform, ANNA, "certificaat")) == 1


async def test_a_new_place_and_a_new_stream_bring_an_updated_invitation_saying_what_changed(
    platform: Platform,
) -> None:
    event_id = await published_meeting(platform, "Verhuisde techniekmiddag")
    await api_sign_up(platform, event_id, CAROL)
    confirmation = await mail(platform, CAROL.email, "Je bent aangemeld")
    method, uid, first_sequence, place = invitation_of(confirmation)
    assert (method, place) == ("REQUEST", "Drenthe College, Emmen")

    moved = await platform.organiser.patch(
        f"/api/events/{event_id}", json={"venue": "Dr. Nassau College, Assen"}
    )
    assert moved.status_code == 200, moved.text
    notice = await mail(platform, CAROL.email, "Gewijzigd: Verhuisde techniekmiddag")
    text = text_of(notice)
    assert "Was: Drenthe College, Emmen" in text
    assert "Nu: Dr. Nassau College, Assen" in text
    method, same_uid, sequence, place = invitation_of(notice)
    assert (method, same_uid, place) == ("REQUEST", uid, "Dr. Nassau College, Assen")
    assert sequence > first_sequence

    streamed = await platform.organiser.patch(
        f"/api/events/{event_id}",
        json={"stream_url": "https://live.sterktechniekonderwijs.nl/techniekmiddag"},
    )
    assert streamed.status_code == 200, streamed.text

    def second_notice() -> EmailMessage | None:
        notices = mails_to(platform, CAROL, "Gewijzigd")
        return notices[1] if len(notices) == 2 else None

    link_notice = await eventually(second_notice, timeout_s=60, what="the second notice")
    text = text_of(link_notice)
    assert "De link om te kijken is gewijzigd" in text
    [(linked_event, token)] = WATCH_LINK.findall(text)
    assert linked_event == event_id
    assert watch_viewer(platform.link_secret, uuid.UUID(event_id), token) is not None
    _, last_uid, last_sequence, _ = invitation_of(link_notice)
    assert (last_uid, last_sequence) == (uid, sequence + 1)
