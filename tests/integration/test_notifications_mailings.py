"""Newsletters end to end inside one process, against real PostgreSQL and a real SMTP server:
double opt-in with a bot guard, drafting and scheduling through the organiser API, sending
with live progress, one-click unsubscribe, suppression, and refusals by the SMTP server."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from sto_notifications.bootstrap import DEFINITION
from sto_notifications.config import NotificationsSettings
from sto_notifications.service import (
    EmailSender,
    MailingSender,
    MailingService,
    NotificationsService,
    Scheduler,
)
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.runtime import Runtime
from tests.support import Clock, ReceivedEmail, SmtpSink, organiser_session

SCHEMA = "notifications"
SECRET = "integration-test-link-secret"


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=8)
    yield pool
    await pool.close()


@dataclass
class Office:
    """The programme office's tools, and the world's mailboxes."""

    pool: asyncpg.Pool
    settings: NotificationsSettings
    clock: Clock
    web: httpx.AsyncClient
    organiser: httpx.AsyncClient
    reactions: NotificationsService
    scheduler: Scheduler
    emails: EmailSender
    mailings: MailingSender
    sink: SmtpSink

    async def send_everything(self) -> None:
        await self.emails.drain()
        await self.scheduler.tick()
        await self.mailings.drain()
        await self.scheduler.tick()

    def mail_to(self, address: str) -> list[ReceivedEmail]:
        return self.sink.to(address)


@pytest.fixture
async def office(
    pool: asyncpg.Pool, database_url: str, smtp: tuple[SmtpSink, int]
) -> AsyncIterator[Office]:
    settings = NotificationsSettings(
        database_url=database_url,
        db_schema=SCHEMA,
        smtp_port=smtp[1],
        smtp_connections=2,
        public_base_url="https://stolive.test",
        link_secret=SecretStr(SECRET),
        events_api_url="http://127.0.0.1:9",
        subscribe_min_fill_s=0.5,
        # One test client stands for many readers: the limit is the security suite's.
        subscribe_rate_per_minute=0,
    )
    clock = Clock(datetime.now(UTC) + timedelta(minutes=1))  # the app itself uses real time
    parts = DEFINITION.bootstrap(Runtime(settings=settings, pool=pool))
    app = DEFINITION.create_app(parts)
    transport = httpx.ASGITransport(app=app)
    mailing_service = MailingService(pool, settings, clock=clock)
    async with (
        httpx.AsyncClient(transport=transport, base_url="https://stolive.test") as web,
        httpx.AsyncClient(
            transport=transport,
            base_url="https://stolive.test",
            cookies=await organiser_session(app, "Bureau STO"),
        ) as organiser,
    ):
        yield Office(
            pool=pool,
            settings=settings,
            clock=clock,
            web=web,
            organiser=organiser,
            reactions=parts.reactions,
            scheduler=Scheduler(pool, settings, parts.reactions, mailing_service, clock=clock),
            emails=EmailSender(pool, settings, clock=clock),
            mailings=MailingSender(pool, settings, clock=clock),
            sink=smtp[0],
        )


def address(prefix: str = "lezer") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@school.nl"


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return found.group(1)


def text_of(email: ReceivedEmail) -> str:
    body = email.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(email: ReceivedEmail) -> str:
    body = email.message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


async def subscribe(office: Office, email: str, **fields: Any) -> httpx.Response:
    form = await office.web.get("/nieuwsbrief")
    assert form.status_code == 200
    await asyncio.sleep(office.settings.subscribe_min_fill_s + 0.05)
    return await office.web.post(
        "/nieuwsbrief",
        data={
            "csrf_token": hidden(form.text, "csrf_token"),
            "started": hidden(form.text, "started"),
            "email": email,
            "name": "Fatima el Amrani",
            "website": "",
            **fields,
        },
    )


async def confirmed_subscriber(office: Office, email: str, **fields: Any) -> None:
    assert (await subscribe(office, email, **fields)).status_code == 200
    await office.emails.drain()
    [opt_in] = office.mail_to(email)
    link = re.search(
        r"https://stolive\.test/notifications(/nieuwsbrief/bevestigen/\S+)", text_of(opt_in)
    )
    assert link, "the opt-in email carries the confirmation link"
    assert (await office.web.post(link.group(1))).status_code == 200


async def test_double_opt_in_with_a_bot_guard(office: Office) -> None:
    person, bot, hasty = address(), address("bot"), address("haastig")
    assert (await subscribe(office, person, role="docent", interests="PIE")).status_code == 200
    # A bot fills in the hidden field; another posts at machine speed. Both get the same page.
    form = await office.web.get("/nieuwsbrief")
    fast = await office.web.post(
        "/nieuwsbrief",
        data={"csrf_token": hidden(form.text, "csrf_token"),
              "started": hidden(form.text, "started"), "email": hasty, "website": ""},
    )  # fmt: skip
    token = {"csrf_token": hidden(form.text, "csrf_token"), "started": hidden(form.text, "started")}
    await asyncio.sleep(office.settings.subscribe_min_fill_s)
    trap = await office.web.post("/nieuwsbrief", data={**token, "email": bot, "website": "x"})
    assert trap.status_code == fast.status_code == 200
    forged = await office.web.post(
        "/nieuwsbrief", data={**token, "csrf_token": "forged", "email": address()}
    )
    assert forged.status_code == 403
    await office.emails.drain()
    assert office.mail_to(bot) == office.mail_to(hasty) == []

    async with office.pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM subscribers WHERE email = $1", person)
    assert status == "pending", "nobody is mailed before confirming"
    [opt_in] = office.mail_to(person)
    assert opt_in.subject == "Bevestig je aanmelding voor de nieuwsbrief van STO"
    link = re.search(
        r"https://stolive\.test/notifications(/nieuwsbrief/bevestigen/\S+)", text_of(opt_in)
    )
    assert link
    assert (await office.web.get(link.group(1))).status_code == 200  # a page, not the act
    async with office.pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM subscribers WHERE email = $1", person) == (
            "pending"
        )
    assert (await office.web.post(link.group(1))).status_code == 200
    async with office.pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM subscribers WHERE email = $1", person) == (
            "confirmed"
        )


async def test_a_mailing_is_drafted_tested_scheduled_sent_and_unsubscribed_from(
    office: Office,
) -> None:
    region = f"R{uuid.uuid4().hex[:4].upper()}"
    readers = [address() for _ in range(3)]
    for reader in readers:
        await confirmed_subscriber(office, reader, region_code=region)
    outsider = address()
    await confirmed_subscriber(office, outsider, region_code="ELDERS")

    assert (await office.web.get("/api/mailings")).status_code == 401
    body = (
        "DUO heeft de voorlopige leerlingenaantallen gepubliceerd.\n\n"
        "## Regioportretten 2023-2024 staan live!\n\n"
        "[Bekijk de regioportretten](https://www.sterktechniekonderwijs.nl/regioportretten)"
    )
    created = await office.organiser.post(
        "/api/mailings",
        json={
            "subject": "De instroomcijfers van schooljaar 2023-2024 zijn bekend",
            "body": body,
            "audience": {"kind": "subscribers", "regions": [region]},
        },
    )
    assert created.status_code == 201, created.text
    mailing_id = created.json()["id"]
    preview = await office.organiser.get(f"/api/mailings/{mailing_id}/preview")
    assert "Regioportretten 2023-2024 staan live!" in preview.text
    tester = address("bureau")
    test = await office.organiser.post(f"/api/mailings/{mailing_id}/test", json={"address": tester})
    assert test.status_code == 200
    [proof] = office.mail_to(tester)
    assert proof.subject.startswith("[TEST] De instroomcijfers")

    later = office.clock.now + timedelta(hours=2)
    scheduled = await office.organiser.post(
        f"/api/mailings/{mailing_id}/schedule", json={"send_at": later.isoformat()}
    )
    assert scheduled.json()["status"] == "scheduled"
    await office.send_everything()
    assert all(len(office.mail_to(r)) == 1 for r in readers), "only the opt-in so far"

    office.clock.now = later
    await office.send_everything()
    progress = (await office.organiser.get(f"/api/mailings/{mailing_id}/progress")).json()
    assert progress | {"finished_at": None, "started_at": None, "scheduled_at": None} == {
        "id": mailing_id,
        "status": "sent",
        "recipients": 3,
        "queued": 0,
        "sent": 3,
        "failed": 0,
        "suppressed": 0,
        "finished_at": None,
        "started_at": None,
        "scheduled_at": None,
    }
    assert len(office.mail_to(outsider)) == 1, "another region: only the opt-in"
    newsletter = office.mail_to(readers[0])[-1]
    message = newsletter.message
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith("https://stolive.test/notifications/afmelden/")
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert "Beste Fatima el Amrani," in text_of(newsletter)
    html = html_of(newsletter)
    assert f'href="{unsubscribe}"' in html
    assert ">Afmelden</a>" in html
    assert f"https://stolive.test/notifications/mailings/{mailing_id}/online" in html
    assert "Online lezen" in html

    online = await office.web.get(f"/mailings/{mailing_id}/online")
    assert online.status_code == 200
    assert "Regioportretten" in online.text
    assert "/afmelden/" not in online.text

    # One-click, as a mail client does it (no cookies), twice: harmless.
    path = unsubscribe.removeprefix("https://stolive.test/notifications")
    for _ in range(2):
        done = await office.web.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
    async with office.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT s.status, x.scope FROM subscribers s"
            " JOIN suppressed x ON x.person_key = s.person_key"
            " WHERE s.email = $1",
            readers[0],
        )
    assert row is not None
    assert (row["status"], row["scope"]) == ("unsubscribed", "newsletters")

    again = await office.organiser.post(
        "/api/mailings",
        json={"subject": "Planning 2025-2029", "body": "Een paar mijlpalen.",
              "audience": {"kind": "subscribers", "regions": [region]}},
    )  # fmt: skip
    second = again.json()["id"]
    await office.organiser.post(f"/api/mailings/{second}/schedule", json={})
    await office.send_everything()
    assert len(office.mail_to(readers[0])) == 2, "unsubscribed: no second newsletter"
    assert len(office.mail_to(readers[1])) == 3
    refused = await office.organiser.put(
        f"/api/mailings/{second}", json={"subject": "Te laat", "body": "x"}
    )
    assert refused.status_code == 409


async def test_a_5xx_mailing_recipient_is_not_retried_and_a_4xx_one_is(office: Office) -> None:
    region = f"R{uuid.uuid4().hex[:4].upper()}"
    gone, busy = address("weg"), address("druk")
    for reader in (gone, busy):
        await confirmed_subscriber(office, reader, region_code=region)
    office.sink.refuse[gone] = "550 5.1.1 No such user"
    office.sink.refuse[busy] = "452 4.2.2 Mailbox full, try later"
    created = await office.organiser.post(
        "/api/mailings",
        json={"subject": "Terugblik STO LIVE", "body": "Kijk terug.",
              "audience": {"kind": "subscribers", "regions": [region]}},
    )  # fmt: skip
    mailing_id = created.json()["id"]
    await office.organiser.post(f"/api/mailings/{mailing_id}/schedule", json={})
    await office.send_everything()
    progress = (await office.organiser.get(f"/api/mailings/{mailing_id}/progress")).json()
    assert (progress["failed"], progress["queued"], progress["status"]) == (1, 1, "sending")

    del office.sink.refuse[busy]
    office.clock.now += timedelta(seconds=5)
    await office.send_everything()
    progress = (await office.organiser.get(f"/api/mailings/{mailing_id}/progress")).json()
    assert (progress["sent"], progress["failed"], progress["status"]) == (1, 1, "sent")
    async with office.pool.acquire() as conn:
        attempts = dict(
            await conn.fetch(
                "SELECT email, attempts FROM mailing_recipients WHERE mailing_id = $1",
                uuid.UUID(mailing_id),
            )
        )
        finished = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE headers->>'type' = 'mailing.finished'"
        )
    assert attempts == {gone: 1, busy: 2}
    assert finished >= 1


async def test_two_schedulers_ticking_at_once_start_a_due_mailing_once(office: Office) -> None:
    region = f"R{uuid.uuid4().hex[:4].upper()}"
    readers = [address() for _ in range(2)]
    for reader in readers:
        await confirmed_subscriber(office, reader, region_code=region)
    created = await office.organiser.post(
        "/api/mailings",
        json={"subject": "Twee planners", "body": "Eén keer, niet twee keer.",
              "audience": {"kind": "subscribers", "regions": [region]}},
    )  # fmt: skip
    mailing_id = uuid.UUID(created.json()["id"])
    await office.organiser.post(f"/api/mailings/{mailing_id}/schedule", json={})
    second = Scheduler(
        office.pool,
        office.settings,
        office.reactions,
        MailingService(office.pool, office.settings, clock=office.clock),
        clock=office.clock,
    )
    await asyncio.gather(office.scheduler.tick(), second.tick())
    async with office.pool.acquire() as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1", mailing_id
        )
        status = await conn.fetchval("SELECT status FROM mailings WHERE id = $1", mailing_id)
    assert (rows, status) == (2, "sending")
    await office.send_everything()
    assert all(len(office.mail_to(r)) == 2 for r in readers), "the opt-in and one newsletter"
