"""The privacy suite runs against the whole platform through its one address (the gateway),
with real browsers where a personal link or a cookie is involved, and reads Kafka with a
client of its own, as anyone with access to the broker could.

What the three modules share lives here: the test people, the steps a person takes in a
browser (sign up, subscribe, ask for their data by e-mail, watch), and a reader of every topic
on the broker from offset 0.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiokafka import TopicPartition

from stolive_shared.messaging.kafka import create_admin
from stolive_shared.settings import KafkaSettings
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.support import ReceivedEmail, eventually, read_partitions

__all__ = [
    "DATA_LINK",
    "DATA_MAIL",
    "MAIL_TIMEOUT_S",
    "TIMEOUT_MS",
    "Needles",
    "Person",
    "Platform",
    "api_sign_up",
    "confirm_newsletter",
    "data_link",
    "every_record",
    "go_live",
    "join_as",
    "link_in",
    "mail",
    "now_iso",
    "sign_up_in_browser",
    "strings_of",
    "subscribe_in_browser",
    "text_of",
    "watch_link",
]

# The whole platform of real processes behind its gateway, one per test module.
platform = e2e.platform

# Generous: a loaded two-core machine renders slowly; every wait is on a condition.
TIMEOUT_MS = 60_000
MAIL_TIMEOUT_S = 60.0

DATA_LINK = re.compile(r"https?://\S+/registrations/gegevens/[A-Za-z0-9._-]+")
DATA_MAIL = "Je gegevens bij Sterk Techniekonderwijs"
NEWSLETTER_CONFIRMATION = re.compile(r"https?://\S+/nieuwsbrief/bevestigen/[A-Za-z0-9._-]+")


def strings_of(person: Person) -> dict[str, str]:
    """What identifies the person: name, address, school, and their distinctive parts."""
    local, domain = person.email.split("@")
    strings = {
        "naam": person.name,
        "e-mailadres": person.email,
        "school": person.school,
        "adres (lokaal deel)": local,
        "adres (domein)": domain,
    }
    for word in re.split(r"\s+", f"{person.name} {person.school}"):
        if len(word) >= 6 and word.lower() not in ("lyceum", "college"):
            strings[f"woord {word}"] = word
    return strings


def _base64_forms(raw: bytes) -> set[bytes]:
    """The bytes as base64 (standard and URL-safe) at each of the three alignments: the
    characters that depend on these bytes alone, wherever they sit in an encoded string."""
    found: set[bytes] = set()
    for shift in range(3):
        first, last = -(-4 * shift // 3), 4 * (shift + len(raw)) // 3
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(b"\0" * shift + raw)[first:last])
    return found


def forms_of(text: str) -> tuple[set[bytes], set[bytes]]:
    """(forms to find in lowercased bytes, forms to find as they are)."""
    any_case: set[bytes] = set()
    for variant in (text, text.lower(), text.upper()):
        any_case |= {
            variant.encode(),
            json.dumps(variant)[1:-1].encode(),  # JSON with \\u escapes
            quote(variant, safe="").encode(),
            variant.encode().hex().encode(),
        }
    exact = _base64_forms(text.encode())
    return {form.lower() for form in any_case}, exact


class Needles:
    """Every form of every personal string, and where one is found."""

    def __init__(self, strings: dict[str, str]) -> None:
        self.forms: list[tuple[str, bytes, bool]] = []
        for label, text in strings.items():
            lowered, exact = forms_of(text)
            self.forms += [(label, form, True) for form in lowered]
            self.forms += [(label, form, False) for form in exact]

    def found_in(self, blob: bytes) -> list[str]:
        lowered = blob.lower()
        return [
            label for label, form, any_case in self.forms if form in (lowered if any_case else blob)
        ]


def text_of(email: ReceivedEmail) -> str:
    body = email.message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def mail(
    platform: Platform, address: str, subject_start: str, *, count: int = 1
) -> ReceivedEmail:
    """The newest of at least ``count`` e-mails to ``address`` whose subject starts so."""

    def found() -> ReceivedEmail | None:
        mails = [m for m in platform.smtp.to(address) if m.subject.startswith(subject_start)]
        return mails[-1] if len(mails) >= count else None

    email: ReceivedEmail = await eventually(
        found, timeout_s=MAIL_TIMEOUT_S, what=f"e-mail '{subject_start}' #{count} to {address}"
    )
    return email


def link_in(email: ReceivedEmail, pattern: re.Pattern[str]) -> str:
    found = pattern.search(text_of(email))
    assert found is not None, f"no {pattern.pattern} in '{email.subject}'"
    return found.group(0)


async def sign_up_in_browser(
    page: Any,
    platform: Platform,
    event_id: str,
    person: Person,
    *,
    newsletter: bool = False,
    colleague: Person | None = None,
) -> None:
    """The sign-up form as a person fills it in, a colleague and the newsletter tick too."""
    base = platform.stack.config.public_base_url
    await page.goto(f"{base}/registrations/events/{event_id}/aanmelden")
    await page.get_by_label("Naam", exact=True).fill(person.name)
    await page.get_by_label("E-mailadres", exact=True).fill(person.email)
    await page.get_by_label("School of organisatie").fill(person.school)
    await page.get_by_label("Rol", exact=True).select_option("docent")
    await page.get_by_label("Ik ga akkoord met de privacyverklaring van STO").check()
    if newsletter:
        await page.get_by_label("Stuur mij de STO-nieuwsbrief").check()
    if colleague is not None:
        await page.get_by_role("button", name="Collega's toevoegen").click()
        await page.get_by_label("Naam van collega 1").fill(colleague.name)
        await page.get_by_label("E-mail van collega 1").fill(colleague.email)
    await page.get_by_role("button", name="Aanmelden", exact=True).click()
    await page.wait_for_url(f"**/registrations/events/{event_id}/ontvangen")


async def subscribe_in_browser(page: Any, platform: Platform, person: Person) -> None:
    """The newsletter form, then the confirmation link from the opt-in e-mail."""
    base = platform.stack.config.public_base_url
    await page.goto(f"{base}/notifications/nieuwsbrief")
    await page.get_by_label("Naam").fill(person.name)
    await page.get_by_label("E-mailadres (verplicht)").fill(person.email)
    await page.get_by_label("Je rol").select_option("docent")
    await page.get_by_label("Produceren, installeren en energie").check()
    await page.get_by_role("button", name="Aanmelden").click()
    await page.get_by_role("heading", name="Bijna klaar").wait_for()
    await confirm_newsletter(page, platform, person)


async def confirm_newsletter(page: Any, platform: Platform, person: Person) -> None:
    """Press the button behind the link in the newsletter's opt-in e-mail."""
    opt_in = await mail(platform, person.email, "Bevestig je aanmelding voor de nieuwsbrief")
    await page.goto(link_in(opt_in, NEWSLETTER_CONFIRMATION))
    await page.get_by_role("button", name="Ja, ik wil de nieuwsbrief ontvangen").click()
    await page.get_by_role("heading", name="Aanmelding bevestigd").wait_for()


async def data_link(page: Any, platform: Platform, person: Person) -> str:
    """From the person's manage link (their confirmation e-mail) in ``page``: ask for their
    data, and read the link from the e-mail that answers it."""
    asked_before = len([m for m in platform.smtp.to(person.email) if m.subject == DATA_MAIL])
    await page.goto(await platform.manage_link(person.email))
    await page.get_by_role("button", name="Mail me mijn gegevens").click()
    await page.get_by_role("heading", name="Kijk in je mail").wait_for()
    email = await mail(platform, person.email, DATA_MAIL, count=asked_before + 1)
    assert email.recipients == [person.email]
    return link_in(email, DATA_LINK)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def join_as(platform: Platform, event_id: str, watch_token: str) -> None:
    """A personal player's join beacon: the viewer id of the person's watch link, with its
    token (``?v=`` of the link)."""
    answer = await platform.gateway.post(
        "/events/api/beacons",
        json={
            "event_id": event_id,
            "viewer_id": watch_token.split(".")[0],
            "viewer_token": watch_token,
            "action": "join",
            "mode": "live",
            "client_ts": now_iso(),
        },
    )
    assert answer.status_code == 204, answer.text


async def go_live(platform: Platform, event_id: str) -> None:
    """The broadcast starts, and the beacon endpoint has learned so (an anonymous beacon
    passes): from then on a player's join counts."""
    went = await platform.organiser.post(f"/api/events/{event_id}/go-live")
    assert went.status_code == 200, went.text

    async def accepted() -> bool:
        answer = await platform.gateway.post(
            "/events/api/beacons",
            json={
                "event_id": event_id,
                "viewer_id": f"anoniem-{event_id[:8]}",
                "action": "join",
                "mode": "live",
                "client_ts": now_iso(),
            },
        )
        return answer.status_code == 204

    await eventually(accepted, timeout_s=60, what="live beacons accepted")


async def watch_link(platform: Platform, person: Person, event_id: str) -> str:
    """The personal watch link for the broadcast on the person's manage page (the one their
    confirmation e-mail for it links to)."""
    base = platform.stack.config.public_base_url
    manage = re.compile(r"https?://\S+/registrations/r/[A-Za-z0-9._-]+")

    async def found() -> str | None:
        for email in reversed(platform.smtp.to(person.email)):
            for link in manage.findall(text_of(email)):
                page = await platform.gateway.get(link.removeprefix(base))
                watch = re.search(rf'href="([^"]+/events/watch/{event_id}[^"]*)"', page.text)
                if watch:
                    return watch.group(1).replace("&amp;", "&")
        return None

    link: str = await eventually(found, timeout_s=MAIL_TIMEOUT_S, what="a personal watch link")
    return link


async def every_record(kafka: KafkaSettings, timeout_s: float = 60.0) -> dict[str, list[Any]]:
    """Every record of every topic the broker lists, from offset 0 to the end each partition
    has now (``read_partitions``): what anyone with access to the broker can read."""
    admin = create_admin(kafka)
    await admin.start()
    try:
        names = sorted(await admin.list_topics())
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    records: dict[str, list[Any]] = {name: [] for name in names}
    for record in await read_partitions(kafka, partitions, timeout_s):
        records[record.topic].append(record)
    return records
