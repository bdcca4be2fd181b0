"""Retention, seen from outside: registrations of an event that ended longer ago than
``registration_retention_days`` lose the person in every service, by themselves, and the
counts stay.

The platform runs its retention jobs every second with a period of 30 days. Time passing is
the one thing a test cannot wait for: the event's end is moved back to a day past the period
in the registrations service's copy of it, as if the calendar had moved on. Everything after that
is observed as people and organisers meet it: the personal links in two browsers, the
organiser's attendee list and CSV through the gateway, the registrations topic read with a
client of our own; and in the stores of the other services, which no page shows whole.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg

from stolive_shared.contracts.topics import REGISTRATIONS
from tests.e2e.conftest import Platform
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.privacy.conftest import Person, api_sign_up
from tests.support import eventually, read_topic

RETENTION_DAYS = 30
JOB_EVERY_S = 1
PLATFORM_ENV = {
    "RETENTION_INTERVAL_S": str(JOB_EVERY_S),
    "REGISTRATION_RETENTION_DAYS": str(RETENTION_DAYS),
}
TIMEOUT_MS = 60_000
ANONYMISED_S = 90.0

IDA = Person("Ida Bewaarmans", "ida.bewaarmans@bewaartermijn.nl", "Bewaarcollege Emmen")
JAN = Person("Jan Termijnsma", "jan.termijnsma@bewaartermijn.nl", "Termijnschool Assen")
KEES = Person("Kees Nogvers", "kees.nogvers@bewaartermijn.nl", "Versheidslyceum Hoogeveen")


async def attendees(platform: Platform, event_id: str) -> dict[str, Any]:
    listed: dict[str, Any] = await platform.organiser_json(
        f"/registrations/api/organiser/events/{event_id}/attendees"
    )
    return listed


async def attendee_csv(platform: Platform, event_id: str) -> str:
    answer = await platform.gateway.get(
        f"/registrations/api/organiser/events/{event_id}/attendees.csv",
        headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.content.decode("utf-8-sig")


async def manage_page(browser: Any, link: str) -> tuple[int, str]:
    """The manage link opened in a browser of its own: its status and visible text."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        answer = await page.goto(link)
        assert answer is not None
        return answer.status, await page.locator("body").inner_text()
    finally:
        await context.close()


def anonymised_on_topic(records: list[Any], event_id: str) -> set[str]:
    """The registration ids ``registrations.anonymised`` messages name for this event, read
    from the raw bytes."""
    named: set[str] = set()
    for record in records:
        message = json.loads(record.value)
        if message.get("type") == "registrations.anonymised" and message["event_id"] == event_id:
            assert record.key.decode() == event_id
            named.update(message["registration_ids"])
    return named


async def test_registrations_past_their_retention_lose_the_person_everywhere_and_counts_stay(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    ended = await published_meeting(platform, "Bewaartermijn-bijeenkomst Emmen")
    current = await published_meeting(platform, "Bewaartermijn-bijeenkomst Hoogeveen")
    for person, event_id in ((IDA, ended), (JAN, ended), (KEES, current)):
        await api_sign_up(platform, event_id, person)
    links = {person: await platform.manage_link(person.email) for person in (IDA, JAN, KEES)}
    before = await attendees(platform, ended)
    ids = {row["name"]: row["id"] for row in before["attendees"]}
    assert set(ids) == {IDA.name, JAN.name}
    gone = [uuid.UUID(ids[IDA.name]), uuid.UUID(ids[JAN.name])]

    conn = await asyncpg.connect(platform.stack.config.database_url)
    try:

        async def analytics_names() -> dict[uuid.UUID, str]:
            rows = await conn.fetch(
                "SELECT registration_id, name FROM analytics.registrants"
                " WHERE registration_id = ANY($1::uuid[])",
                gone,
            )
            return {row["registration_id"]: row["name"] for row in rows}

        async def notifications_copies() -> int:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM notifications.registrations"
                " WHERE registration_id = ANY($1::uuid[])",
                gone,
            )
            return count

        async def held_everywhere() -> bool:
            names = await analytics_names()
            return sorted(names.values()) == sorted([IDA.name, JAN.name]) and (
                await notifications_copies() == 2
            )

        await eventually(held_everywhere, timeout_s=60, what="every service to hold the two")

        # Time passes: the meeting ended one day past the retention period.
        ended_ago = timedelta(days=RETENTION_DAYS + 1)
        await conn.execute(
            "UPDATE registrations.events SET ends_at = now() - $2::interval,"
            " starts_at = now() - $2::interval - interval '3 hours' WHERE id = $1",
            uuid.UUID(ended),
            ended_ago,
        )
        moved = time.monotonic()

        async def announced() -> set[str]:
            records = await read_topic(platform.kafka, REGISTRATIONS.name, REGISTRATIONS.partitions)
            named = anonymised_on_topic(records, ended)
            return named if named == {str(i) for i in gone} else set()

        await eventually(announced, timeout_s=ANONYMISED_S, what="registrations.anonymised")

        async def gone_everywhere() -> bool:
            names = await analytics_names()
            return (
                await notifications_copies() == 0
                and len(names) == 2
                and set(names.values()) == {""}
            )

        await eventually(gone_everywhere, timeout_s=ANONYMISED_S, what="every copy to go")
        took = time.monotonic() - moved
        keys = await conn.fetchval(
            "SELECT count(*) FROM privacy.data_keys WHERE subject = ANY($1::uuid[])", gone
        )
        assert keys == 0
        mails = await conn.fetch(
            "SELECT recipient, body_text FROM notifications.emails"
            " WHERE registration_id = ANY($1::uuid[])",
            gone,
        )
        assert mails, "the confirmations were sent"
        assert {(m["recipient"], m["body_text"]) for m in mails} == {("gewist", "")}
        kees_still = await conn.fetchval(
            "SELECT count(*) FROM notifications.registrations WHERE lower(email) = $1",
            KEES.email,
        )
        assert kees_still == 1
    finally:
        await conn.close()

    after = await attendees(platform, ended)
    assert after["counts"]["confirmed"] == 2
    assert [(row["name"], row["email"]) for row in after["attendees"]] == [("", ""), ("", "")]
    table = await attendee_csv(platform, ended)
    for person in (IDA, JAN):
        for detail in (person.name, person.email, person.school):
            assert detail not in table

    # Two people, two browsers: the one whose event is long past finds nothing behind
    # their link; the one still to come finds everything.
    status, text = await manage_page(browser, links[IDA])
    assert status == 404
    assert "niet (meer) geldig" in text
    assert IDA.name not in text
    status, text = await manage_page(browser, links[KEES])
    assert status == 200
    assert KEES.name in text
    cancelled = await platform.gateway.delete(
        "/registrations/api/registrations/" + links[JAN].rsplit("/", 1)[1]
    )
    assert cancelled.status_code == 404
    assert (await attendees(platform, ended))["counts"]["confirmed"] == 2
    figures(
        f"retention: {len(gone)} registrations {ended_ago.days} days after their event, past a"
        f" {RETENTION_DAYS}-day period, anonymised in registrations, notifications and analytics"
        f" {took:.1f}s after the event's end moved back (job every {JOB_EVERY_S} s); counts kept"
        f" ({after['counts']['confirmed']} confirmed); the registration still ahead untouched"
    )
