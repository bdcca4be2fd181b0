"""Erasure (AVG article 17) that reaches every store, and that no replay undoes.

A person signs up twice and subscribes to the newsletter from the sign-up form, watches a
broadcast, then erases themselves in a browser: their manage link from the confirmation
e-mail, "Mail me mijn gegevens", the link in the e-mail that answers, the tick and the button.
Afterwards nothing of them is shown by any link, page, list or CSV, held in any table of
PostgreSQL or any file of the platform; another person, in a browser of their own, keeps
everything. Then every topic is read again from offset 0: each sealed copy of the person's
contact is still there and none opens any more (their keys are forgotten). Finally the
registrations topic is replayed from offset 0 into a fresh consumer group through
notifications' own message handlers, against the platform's database, while the platform's
own e-mail sender runs: nothing of the person comes back, and no e-mail goes to them.

(A fresh group in-process rather than a restarted worker: a notifications worker's group
name is fixed by its code, and resetting that group's offsets replays nothing, because
``processed_messages`` remembers every message by that name. A new name is what a new
deployment or a second consumer would bring, and that is the case the issue names.)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from sto_notifications.consumers import message_handlers
from sto_notifications.service import NotificationsService
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.contracts.topics import REGISTRATIONS
from stolive_shared.db import create_pool
from stolive_shared.errors import PoisonMessage
from stolive_shared.links import MANAGE, PersonalLinks, verify
from stolive_shared.messaging.consumer import MessageConsumer
from stolive_shared.privacy import keyring, person_key
from stolive_shared.urls import PublicUrls
from tests.e2e.conftest import Platform
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
    sign_up_in_browser,
    strings_of,
    text_of,
    watch_link,
)
from tests.support import embedded_kafka, eventually

PLATFORM_ENV = {"SIGNUP_RATE_PER_MINUTE": "0"}

ERASED = Person(
    "Evert-Jan Wissenburg", "ej.wissenburg@vergeetmenietje-college.nl", "Vergeetmenietje College"
)
KEPT = Person(
    "Katrien Blijvenga", "k.blijvenga@onthoudlyceum-delfzijl.nl", "Onthoudlyceum Delfzijl"
)
WEBINAR = "Wissen en vergeten: een STO-webinar"
MEETING = "Regiobijeenkomst over bewaren"
# A sealed contact wherever it is: in a message, or as JSON inside a JSON string (a Faust
# changelog keeps a profile's sealed contact so).
SEALED = re.compile(
    rb'subject\\*"\s*:\s*\\*"([0-9a-f-]{36})\\*"\s*,\s*\\*"ciphertext\\*"\s*:\s*\\*"([A-Za-z0-9_=-]+)'
)


def manage_tokens(platform: Platform, person: Person) -> list[str]:
    """The manage tokens in every e-mail the person received."""
    found = re.compile(r"/registrations/r/([A-Za-z0-9._-]+)")
    tokens = (token for m in platform.smtp.to(person.email) for token in found.findall(text_of(m)))
    return list(dict.fromkeys(tokens))


def registration_ids(platform: Platform, person: Person) -> set[uuid.UUID]:
    ids = {verify(platform.link_secret, MANAGE, token) for token in manage_tokens(platform, person)}
    return {i for i in ids if i is not None}


async def organiser_get(platform: Platform, path: str) -> str:
    answer = await platform.gateway.get(
        path, headers={"Authorization": f"Bearer {platform.stack.organiser_token}"}
    )
    assert answer.status_code == 200, (path, answer.status_code)
    return answer.content.decode("utf-8-sig")


async def test_erasing_oneself_leaves_nothing_anywhere_and_a_replay_brings_nothing_back(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    """The erasure from the person's own data page reaches every store; another person keeps
    everything; every copy on Kafka stays unreadable, and a fresh consumer group replaying
    the topic re-creates nothing and mails nobody."""
    webinar = await published_event(platform, title=WEBINAR)
    meeting = await published_meeting(platform, MEETING)
    erased_browser, kept_browser = await browser.new_context(), await browser.new_context()
    erased_browser.set_default_timeout(TIMEOUT_MS)
    kept_browser.set_default_timeout(TIMEOUT_MS)
    try:
        erased_page, kept_page = await erased_browser.new_page(), await kept_browser.new_page()
        await sign_up_in_browser(erased_page, platform, webinar, ERASED, newsletter=True)
        await confirm_newsletter(erased_page, platform, ERASED)
        await sign_up_in_browser(kept_page, platform, webinar, KEPT, newsletter=True)
        await confirm_newsletter(kept_page, platform, KEPT)
        await api_sign_up(platform, meeting, ERASED)
        await eventually(
            lambda: len(registration_ids(platform, ERASED)) == 2,
            timeout_s=60,
            what="both confirmations with their manage links",
        )
        await watch(platform, webinar, (ERASED, KEPT))

        # What the platform holds before: analytics names both watchers.
        attendance = f"/analytics/api/events/{webinar}/attendance.csv"

        async def both_in_attendance() -> bool:
            text = await organiser_get(platform, attendance)
            return ERASED.name in text and KEPT.name in text

        await eventually(both_in_attendance, timeout_s=60, what="both in analytics' CSV")

        # The person's own data page, from the link their e-mail brings.
        export = await data_link(erased_page, platform, ERASED)
        await erased_page.goto(export)
        shown = await erased_page.inner_text("main")
        for fact in (ERASED.email, ERASED.name, ERASED.school, WEBINAR, MEETING):
            assert fact in shown, fact
        # Without the tick nothing happens: the page says what is missing.
        await erased_page.get_by_role("button", name="Wis al mijn gegevens").click()
        await erased_page.get_by_role("alert").wait_for()
        assert "Vink aan dat je echt al je gegevens wilt laten wissen" in (
            await erased_page.get_by_role("alert").inner_text()
        )
        await erased_page.get_by_label("Ik wil al mijn gegevens laten wissen").check()
        await erased_page.get_by_role("button", name="Wis al mijn gegevens").click()
        await erased_page.get_by_role("heading", name="Je gegevens zijn gewist").wait_for()

        # Their links show nothing of them any more.
        needles = Needles(strings_of(ERASED))
        answer = await erased_page.goto(export)
        assert answer is not None
        assert answer.status == 404
        assert needles.found_in((await erased_page.content()).encode()) == []
        data_file = await platform.gateway.get(
            export.removeprefix(platform.stack.config.public_base_url) + "/gegevens.json"
        )
        assert data_file.status_code == 404
        assert needles.found_in(data_file.content) == []
        for token in manage_tokens(platform, ERASED):
            # The link shows nothing of them, and offers nothing to ask or change.
            await erased_page.goto(
                f"{platform.stack.config.public_base_url}/registrations/r/{token}"
            )
            assert needles.found_in((await erased_page.content()).encode()) == []
            assert await erased_page.locator("main form").count() == 0
            api = await platform.gateway.get(f"/registrations/api/registrations/{token}")
            assert needles.found_in(api.content) == [], api.text

        # The other person, in their own browser, keeps everything.
        kept_export = await data_link(kept_page, platform, KEPT)
        await kept_page.goto(kept_export)
        kept_shown = await kept_page.inner_text("main")
        for fact in (KEPT.email, KEPT.name, KEPT.school, WEBINAR):
            assert fact in kept_shown, fact
        assert "Geen aanmelding voor de nieuwsbrief" not in kept_shown, "the subscription stays"
        assert ERASED.email not in kept_shown
    finally:
        await erased_browser.close()
        await kept_browser.close()

    # The organisers' lists and both services' CSVs: the person is gone, counts stay.
    async def gone_from_organiser_views() -> bool:
        texts = [
            await organiser_get(platform, attendance),
            await organiser_get(
                platform, f"/registrations/api/organiser/events/{webinar}/attendees"
            ),
            await organiser_get(
                platform, f"/registrations/api/organiser/events/{webinar}/attendees.csv"
            ),
            await organiser_get(
                platform, f"/registrations/api/organiser/events/{meeting}/attendees"
            ),
        ]
        return not any(needles.found_in(t.encode()) for t in texts) and KEPT.name in texts[0]

    await eventually(gone_from_organiser_views, timeout_s=60, what="the person gone from lists")
    counts = (await platform.gateway.get(f"/registrations/api/events/{webinar}/counts")).json()
    assert counts["confirmed"] == 2, counts

    # No table of any service holds anything of them (the same search finds the other).
    await eventually(
        lambda: _nothing_in_database(platform, needles),
        timeout_s=60,
        what="every service to erase the person",
    )
    assert await rows_naming(platform, Needles({"e-mailadres": KEPT.email})), "the search works"
    files = files_naming(platform, needles)
    assert files == [], files

    # Every copy on Kafka is still there, and none opens any more.
    ids = registration_ids(platform, ERASED)
    kept_ids = registration_ids(platform, KEPT)
    records = await every_record(platform.kafka)
    sealed = sealed_copies(records)
    erased_copies = [(where, s) for where, s in sealed if s.subject in ids]
    kept_copies = [(where, s) for where, s in sealed if s.subject in kept_ids]
    assert {where.split("/")[0] for where, _ in erased_copies} >= {
        REGISTRATIONS.name,
        "sto-analytics-registrant_profiles-changelog",
    }, "the person's sealed contact is on the topic and in the changelog"
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        assert await keyring.keys_of(conn, list(ids)) == {}
        for where, copy in erased_copies:
            assert await keyring.open_contact(conn, copy) is None, where
        for where, copy in kept_copies:
            contact = await keyring.open_contact(conn, copy)
            assert contact is not None, where
            assert contact.email == KEPT.email
    finally:
        await conn.close()

    # Replay from offset 0 into a fresh consumer group, through notifications' handlers.
    mails_before = len(platform.smtp.to(ERASED.email))
    replayed, replayed_types = await replay_into_notifications(platform, records)
    erased_messages = [
        m.message_id
        for m in _messages(records[REGISTRATIONS.name])
        if m.type in replayed_types
        and getattr(getattr(m, "registration", None), "registration_id", None) in ids
    ]
    assert len(erased_messages) >= 3, "confirmed (twice) and the export request"
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        handled = await conn.fetchval(
            "SELECT count(*) FROM notifications.processed_messages"
            " WHERE consumer = $1 AND message_id = ANY($2::uuid[])",
            replayed.name,
            erased_messages,
        )
        assert handled == len(erased_messages), "the replay handled every one of their messages"
        subscribers = await conn.fetchval(
            "SELECT count(*) FROM notifications.subscribers WHERE person_key = $1",
            person_key(platform.link_secret, ERASED.email),
        )
        copies = await conn.fetchval(
            "SELECT count(*) FROM notifications.registrations"
            " WHERE registration_id = ANY($1::uuid[])",
            list(ids),
        )
        assert (subscribers, copies) == (0, 0), "no subscriber, no copy of a registration"
    finally:
        await conn.close()
    assert await _nothing_in_database(platform, needles)
    await eventually(
        lambda: _queue_empty(platform), timeout_s=60, what="the e-mail queue to be sent"
    )
    assert len(platform.smtp.to(ERASED.email)) == mails_before, "a mail to the erased person"

    figures(
        f"privacy/erasure: {len(ids)} registrations and a newsletter subscription erased from "
        f"the data page; {len(erased_copies)} sealed copies of the contact on "
        f"{len({w.split('/')[0] for w, _ in erased_copies})} topics, none opens; replay of "
        f"{len(records[REGISTRATIONS.name])} records into fresh group {replayed.name}: "
        f"{replayed.stats.handled} handled, nothing of the person back, 0 mails to them"
    )


async def watch(platform: Platform, event_id: str, people: tuple[Person, ...]) -> None:
    """Each person's player joins the broadcast with their own watch link."""
    await go_live(platform, event_id)
    for person in people:
        await join_as(
            platform, event_id, (await watch_link(platform, person, event_id)).split("?v=")[1]
        )


async def rows_naming(platform: Platform, needles: Needles) -> list[str]:
    """``schema.table: labels`` for every row of every table (all schemas but PostgreSQL's
    own) that holds one of the needles, bytea columns included."""
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        tables = await conn.fetch(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_type = 'BASE TABLE'
                 AND table_schema NOT IN ('pg_catalog', 'information_schema')"""
        )
        found = []
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            for row in await conn.fetch(f"SELECT row_to_json(t)::text AS row FROM {name} t"):
                labels = needles.found_in(row["row"].encode())
                if labels:
                    found.append(f"{name}: {sorted(set(labels))}")
        return found
    finally:
        await conn.close()


async def _nothing_in_database(platform: Platform, needles: Needles) -> bool:
    return not await rows_naming(platform, needles)


def files_naming(platform: Platform, needles: Needles) -> list[str]:
    """Files of the platform's data folder (logs, Faust data, secrets) that hold a needle."""
    return [
        f"{path.relative_to(platform.stack.config.data_dir)}: {sorted(set(labels))}"
        for path in sorted(platform.stack.config.data_dir.rglob("*"))
        if path.is_file() and (labels := needles.found_in(path.read_bytes()))
    ]


def sealed_copies(records: dict[str, list[Any]]) -> list[tuple[str, Sealed]]:
    """Every sealed contact in every record of every topic: ``(topic/partition@offset, it)``."""
    copies = []
    for topic, topic_records in records.items():
        for record in topic_records:
            for subject, ciphertext in SEALED.findall(record.value or b""):
                copies.append(
                    (
                        f"{topic}/{record.partition}@{record.offset}",
                        Sealed(subject=uuid.UUID(subject.decode()), ciphertext=ciphertext.decode()),
                    )
                )
    return copies


def _messages(records: list[Any]) -> list[Any]:
    messages = []
    for record in records:
        with contextlib.suppress(PoisonMessage):
            messages.append(decode(record.value))
    return messages


async def replay_into_notifications(
    platform: Platform, records: dict[str, list[Any]]
) -> tuple[MessageConsumer, set[str]]:
    """Run notifications' registrations handlers as a consumer of a group nobody used, from
    offset 0 to the end of every partition, in the platform's database."""
    base = platform.stack.config.public_base_url
    service = NotificationsService(
        schema="notifications",
        links=PersonalLinks(platform.link_secret, PublicUrls(base)),
        mail_from="STO Live <noreply@sterktechniekonderwijs.nl>",
    )
    handlers = {
        model: handler
        for model, handler in message_handlers(service).items()
        if model.TOPIC == REGISTRATIONS.name
    }
    pool = await create_pool(platform.stack.database_url, "notifications", max_size=2)
    consumer = MessageConsumer(
        name=f"notifications.replay-{uuid.uuid4().hex[:8]}",
        topics=[REGISTRATIONS.name],
        handlers=handlers,
        pool=pool,
        kafka=embedded_kafka(
            platform.stack.bootstrap_servers, session_timeout_ms=6000, heartbeat_interval_ms=1000
        ),
    )
    ends: dict[str, int] = {}
    for record in records[REGISTRATIONS.name]:
        key = f"{REGISTRATIONS.name}/{record.partition}"
        ends[key] = max(ends.get(key, 0), record.offset + 1)
    running = asyncio.create_task(consumer.run())
    try:

        def caught_up() -> bool:
            assert not running.done(), running
            return all(consumer.stats.lag.get(key) == 0 for key in ends)

        await eventually(caught_up, timeout_s=90, what="the replay to reach the end")
        return consumer, {model.model_fields["type"].default for model in handlers}
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await pool.close()


async def _queue_empty(platform: Platform) -> bool:
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM notifications.emails WHERE status IN ('queued', 'sending')"
        )
        return bool(waiting == 0)
    finally:
        await conn.close()
