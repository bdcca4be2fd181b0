"""No personal data readable on Kafka (AVG, privacy by design), seen from outside.

People sign up in a browser (with a colleague and the newsletter tick) and through the public
API, one cancels, one asks for their data, one only subscribes to the newsletter, one address
bounces, two people watch a broadcast, and two poison records become dead letters. Then a
client of our own lists every topic the broker has (business topics, Faust changelogs,
dead-letter topics, relay probes) and reads each from offset 0: no name, e-mail address, school
or personal-link token of those people may be in any key, value or header, in any case, nor
JSON-escaped, URL-encoded, hex or base64. Their contacts are on the topics only sealed: the
keyring in PostgreSQL opens them, nothing else does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import asyncpg

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.codec import decode, header
from stolive_shared.contracts.notifications import EmailFailed
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.contracts.topics import (
    ALL_TOPICS,
    NOTIFICATIONS,
    REGISTRATIONS,
    VIEWER_ACTIVITY,
)
from stolive_shared.errors import PoisonMessage
from stolive_shared.messaging.kafka import create_producer
from stolive_shared.privacy import keyring
from tests.e2e.conftest import Platform
from tests.e2e.streams import PLAYLIST, make_hls, serve
from tests.e2e.test_events_in_browser import press_play
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.e2e.test_walking_skeleton import published_event
from tests.privacy.conftest import (
    TIMEOUT_MS,
    Needles,
    Person,
    api_sign_up,
    confirm_newsletter,
    data_link,
    every_record,
    go_live,
    join_as,
    mail,
    sign_up_in_browser,
    strings_of,
    subscribe_in_browser,
    text_of,
    watch_link,
)
from tests.support import eventually, read_topic

# One test client stands for many people: no per-address limits, and the newsletter form
# may be sent as fast as a test types.
PLATFORM_ENV = {
    "SIGNUP_RATE_PER_MINUTE": "0",
    "SUBSCRIBE_RATE_PER_MINUTE": "0",
    "SUBSCRIBE_MIN_FILL_S": "0",
}

SCHOOL = "Zonnebloem Lyceum Veendam"
BOOKER = Person("Wilhelmina Quast-Özdemir", "w.quast-ozdemir@zonnebloem-lyceum.nl", SCHOOL)
COLLEAGUE = Person("Barend Ypma-Ruigrok", "b.ypma-ruigrok@zonnebloem-lyceum.nl", SCHOOL)
MEETING_GOER = Person(
    "Tjitske Hoogendoorn-Vlas", "t.hoogendoorn-vlas@knarrenburg-college.nl", "Knarrenburg College"
)
CANCELLER = Person(
    "Gerlof Zandbergen", "g.zandbergen@dwarsligger-vmbo.nl", "Dwarsligger Vmbo Stadskanaal"
)
READER = Person(
    "Roosmarijn Ekelschot", "r.ekelschot@heidebloem-school.nl", "Heidebloem Techniekschool"
)
BOUNCER = Person("Ludger Pannekoek", "l.pannekoek@oude-molen-lyceum.nl", "Oude Molen Lyceum Emmen")
PEOPLE = (BOOKER, COLLEAGUE, MEETING_GOER, CANCELLER, READER, BOUNCER)
# An address that only a poison record carries, in a field that does not validate: the dead
# letter's headers (its error) must not quote it.
CANARY = "kanarie.in.de.kolenmijn@dlq-proef.nl"

TOKEN = re.compile(r"[A-Za-z0-9_-]+(?:-[0-9a-f]+)?\.([A-Za-z0-9_-]{16,})")
URL = re.compile(r"https?://[^\s<>\"']+")


def tokens_in(emails: Iterable[Any]) -> dict[str, str]:
    """Every personal-link token the e-mails hold (path segments and query values of their
    links, and the List-Unsubscribe header), each with its MAC: ``label -> text``."""
    tokens: dict[str, str] = {}
    for email in emails:
        text = text_of(email) + " " + str(email.message.get("List-Unsubscribe", ""))
        for url in URL.findall(text):
            parts = urlsplit(url.rstrip(".,>)"))
            values = [*parts.path.split("/"), *(v for _, v in parse_qsl(parts.query))]
            for value in values:
                token = TOKEN.fullmatch(value)
                if token is None:
                    continue
                kind = parts.path.split("/")[2] if parts.path.count("/") >= 2 else "?"
                tokens[f"token ({kind}) {value[:12]}…"] = value
                tokens[f"MAC van token ({kind}) {value[:12]}…"] = token.group(1)
    return tokens


def record_parts(record: Any) -> list[tuple[str, bytes]]:
    parts = [("key", record.key or b""), ("value", record.value or b"")]
    for name, value in record.headers or ():
        parts.append((f"header {name}", name.encode() + b"=" + bytes(value or b"")))
    return parts


async def test_no_name_address_school_or_personal_link_on_any_topic(
    platform: Platform, browser: Any, figures: Callable[[str], None], tmp_path: Path
) -> None:
    """After everything people do that makes messages, a reader of the broker finds nothing
    that identifies them: not on business topics, changelogs, dead letters or probes."""
    webinar = await published_event(platform, title="Privacy op de lijn: een STO-webinar")
    meeting = await published_meeting(platform, "Privacy-bijeenkomst in de regio")
    platform.smtp.refuse[BOUNCER.email] = (
        f"550 5.1.1 <{BOUNCER.email}>: Recipient address rejected: User unknown"
    )

    # In a browser: a teacher signs up with a colleague and ticks the newsletter, confirms it
    # from the opt-in e-mail; someone else subscribes to the newsletter only.
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        await sign_up_in_browser(
            page, platform, webinar, BOOKER, newsletter=True, colleague=COLLEAGUE
        )
        await confirm_newsletter(page, platform, BOOKER)
        await subscribe_in_browser(page, platform, READER)
    finally:
        await context.close()

    # Through the public API: a sign-up for the meeting, one that is cancelled, one whose
    # confirmation bounces (the SMTP answer names the address).
    await api_sign_up(platform, meeting, MEETING_GOER)
    await api_sign_up(platform, webinar, CANCELLER)
    await api_sign_up(platform, webinar, BOUNCER)
    cancel_token = (await platform.manage_link(CANCELLER.email)).rsplit("/", 1)[1]
    cancelled = await platform.gateway.delete(f"/registrations/api/registrations/{cancel_token}")
    assert cancelled.json()["status"] == "cancelled"
    await mail(platform, CANCELLER.email, "Je aanmelding is geannuleerd")

    # Someone asks for their data from their manage page: the link comes by e-mail.
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        export = await data_link(page, platform, MEETING_GOER)
        await page.goto(export)
        assert MEETING_GOER.email in await page.inner_text("main")
    finally:
        await context.close()

    # A real stream (made by ffmpeg, served on loopback): the player reports once it plays.
    make_hls(tmp_path / "live", seconds=60)
    with serve(tmp_path) as stream:
        moved = await platform.organiser.patch(
            f"/api/events/{webinar}", json={"stream_url": stream.url(f"live/{PLAYLIST}")}
        )
        assert moved.status_code == 200, moved.text
        await _watched(platform, browser, webinar)

    poison_id = await poison_records(platform)
    await everything_settled(platform, webinar, meeting, poison_id)

    # Read the broker as an outsider would: every topic it lists, from offset 0.
    records = await every_record(platform.kafka)
    assert {topic.name for topic in ALL_TOPICS} <= set(records), "the broker lists every topic"
    for topic in (
        REGISTRATIONS.name,
        NOTIFICATIONS.name,
        VIEWER_ACTIVITY.name,
        REGISTRATIONS.dlq.name,
        VIEWER_ACTIVITY.dlq.name,
        "sto-analytics-registrant_profiles-changelog",
        "sto-analytics-registration_status-changelog",
    ):
        assert records[topic], f"{topic} is empty: the scan would prove nothing there"

    strings: dict[str, str] = {}
    for person in PEOPLE:
        strings |= {
            f"{label} van {person.name}": text for label, text in strings_of(person).items()
        }
        strings[f"SHA-256 van het adres van {person.name}"] = hashlib.sha256(
            person.email.encode()
        ).hexdigest()
    emails = list(platform.smtp.received)
    tokens = tokens_in(emails)
    kinds = {label.split(")")[0].split("(")[1] for label in tokens}
    # Manage, watch, data-export and newsletter-confirmation links: all were mailed.
    assert {"r", "watch", "gegevens", "nieuwsbrief"} <= kinds, kinds
    needles = Needles(strings | tokens)
    # The search itself finds what it looks for, in each of the forms it knows.
    for probe in (
        json.dumps({"naam": BOOKER.name}).encode(),
        base64.b64encode(b"x" + COLLEAGUE.email.encode()),
        quote(READER.email).encode(),
        BOUNCER.school.upper().encode(),
    ):
        assert needles.found_in(probe), probe

    found: list[str] = []
    scanned = size = 0
    for topic, topic_records in records.items():
        for record in topic_records:
            scanned += 1
            for where, blob in record_parts(record):
                size += len(blob)
                # The poison's value is copied whole into its dead letters: nowhere else.
                copied = where == "value" and topic in (REGISTRATIONS.name, REGISTRATIONS.dlq.name)
                if not copied and CANARY.encode() in blob.lower():
                    found.append(f"{topic}/{record.partition}@{record.offset} {where}: canary")
                for label in needles.found_in(blob):
                    found.append(f"{topic}/{record.partition}@{record.offset} {where}: {label}")
    assert found == [], "\n".join(found[:40])

    # The contacts are there, sealed: only the keyring in PostgreSQL opens them.
    opened = await sealed_contacts_opened(platform, records[REGISTRATIONS.name])
    assert {BOOKER.email, COLLEAGUE.email, MEETING_GOER.email, CANCELLER.email} <= opened

    # Nor does any log line of any service hold an address.
    in_logs = [
        f"{log_file.name}: {person.email}"
        for log_file in sorted((platform.stack.config.data_dir / "logs").glob("*.log"))
        for person in PEOPLE
        if person.email.encode() in log_file.read_bytes().lower()
    ]
    assert in_logs == []

    changelogs = sum(1 for topic in records if topic.endswith("-changelog"))
    dead_letter_topics = sum(1 for topic in records if topic.endswith(".dlq"))
    figures(
        f"privacy/topics: {len(records)} topics ({changelogs} Faust changelogs, "
        f"{dead_letter_topics} dead-letter topics) read from offset 0: {scanned} records, "
        f"{size} bytes of keys, values and headers; {len(strings)} personal strings of "
        f"{len(PEOPLE)} people and {len(tokens)} tokens and MACs from {len(emails)} e-mails, "
        f"{len(needles.forms)} forms (any case, JSON-escaped, URL-encoded, hex, base64): "
        f"0 found; {len(opened)} people's contacts sealed, opened only by the keyring"
    )


async def poison_records(platform: Platform) -> str:
    """Two records nobody can handle: a registration message whose status is an address (its
    sealed contact a real person's), and bytes that are no JSON on the viewer topic."""
    [confirmed] = [
        record
        for record in await read_topic(platform.kafka, REGISTRATIONS.name, REGISTRATIONS.partitions)
        if record.value and b'"registration.confirmed"' in record.value
    ][:1]
    data = json.loads(confirmed.value)
    poison_id = str(uuid.uuid4())
    data["message_id"] = poison_id
    data["registration"]["status"] = CANARY
    producer = create_producer(platform.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            REGISTRATIONS.name,
            value=json.dumps(data).encode(),
            key=confirmed.key,
            headers=[("type", b"registration.confirmed"), ("message_id", poison_id.encode())],
        )
        await producer.send_and_wait(
            VIEWER_ACTIVITY.name, value=b"{kapot", key=f"gif-{poison_id}".encode()
        )
    finally:
        await producer.stop()
    return poison_id


async def everything_settled(
    platform: Platform, webinar: str, meeting: str, poison_id: str
) -> None:
    """Wait until every consumer has done its work: analytics counted (its changelogs
    written), the bounce was reported, and both poison records are dead letters."""

    async def counted(event_id: str, confirmed: int) -> bool:
        answer = await platform.gateway.get(f"/analytics/api/events/{event_id}/registrations")
        return answer.status_code == 200 and answer.json()["confirmed"] == confirmed

    await eventually(lambda: counted(webinar, 3), timeout_s=60, what="analytics: 3 confirmed")
    await eventually(lambda: counted(meeting, 1), timeout_s=60, what="analytics: 1 confirmed")

    async def bounce_reported() -> bool:
        records = await read_topic(platform.kafka, NOTIFICATIONS.name, NOTIFICATIONS.partitions)
        return any(
            isinstance(message, EmailFailed) and message.permanent for message in decoded(records)
        )

    await eventually(bounce_reported, timeout_s=90, what="email.failed for the bounce")

    async def dead_letters() -> bool:
        registrations = await read_topic(platform.kafka, f"{REGISTRATIONS.name}.dlq", 1)
        by = {
            header(r.headers, "dlq.consumer")
            for r in registrations
            if header(r.headers, "message_id") == poison_id
        }
        viewers = await read_topic(platform.kafka, f"{VIEWER_ACTIVITY.name}.dlq", 1)
        return by >= {"notifications.registrations", "analytics.registrations"} and any(
            r.key == f"gif-{poison_id}".encode() for r in viewers
        )

    await eventually(dead_letters, timeout_s=60, what="both poison records dead-lettered")


def decoded(records: Iterable[Any]) -> list[Message]:
    messages = []
    for record in records:
        try:
            messages.append(decode(record.value))
        except PoisonMessage:
            continue  # a poison record is no message
    return messages


async def sealed_contacts_opened(platform: Platform, records: list[Any]) -> set[str]:
    """The addresses in the sealed contacts of the registration messages, opened with the
    keyring in the platform's PostgreSQL (as a consumer does)."""
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        opened: set[str] = set()
        for message in decoded(records):
            registration = getattr(message, "registration", None)
            sealed = getattr(registration, "contact", None)
            if isinstance(sealed, Sealed):
                contact = await keyring.open_contact(conn, sealed)
                assert contact is not None, f"{message.type}: a contact the keyring cannot open"
                opened.add(contact.email)
        return opened
    finally:
        await conn.close()


async def _watched(platform: Platform, browser: Any, webinar: str) -> None:
    """The broadcast goes live: the booker watches in a browser from her own link, her
    colleague's player reports through the beacon API with his; both reach the topic."""
    await go_live(platform, webinar)
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    booker_viewer = (await watch_link(platform, BOOKER, webinar)).split("?v=")[1].split(".")[0]
    colleague_token = (await watch_link(platform, COLLEAGUE, webinar)).split("?v=")[1]
    try:
        page = await context.new_page()
        await page.goto(await watch_link(platform, BOOKER, webinar))
        await press_play(page)
        await join_as(platform, webinar, colleague_token)

        async def both_watching() -> bool:
            records = await read_topic(
                platform.kafka, VIEWER_ACTIVITY.name, VIEWER_ACTIVITY.partitions
            )
            seen = b"".join(r.value or b"" for r in records)
            return booker_viewer.encode() in seen and colleague_token.split(".")[0].encode() in seen

        await eventually(both_watching, timeout_s=60, what="both viewers' beacons on the topic")
    finally:
        await context.close()
