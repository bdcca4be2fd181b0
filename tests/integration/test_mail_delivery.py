"""Mail that arrives, against real PostgreSQL and a real SMTP server (aiosmtpd): DKIM
signatures a receiver verifies (dkimpy, against the test's own DNS record), and bounces
counted hard and soft from the SMTP answers at send time, with their thresholds."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import dkim
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from sto_notifications.bootstrap import DEFINITION
from sto_notifications.config import NotificationsSettings
from sto_notifications.domain import Audience
from sto_notifications.service import EmailSender, MailingDraft, MailingSender, MailingService
from stolive.broker import free_port
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.privacy import person_key
from tests.support import Clock, SmtpSink

SCHEMA = "notifications"
DOMAIN = "sterktechniekonderwijs.nl"
SELECTOR = "sto2026"
REQUIRED = {"from", "to", "subject", "date", "message-id"}
ONE_CLICK = {"list-unsubscribe", "list-unsubscribe-post"}


@dataclass
class RawSink(SmtpSink):
    """The SMTP sink that also keeps each message's bytes exactly as they arrived."""

    raw: dict[str, list[bytes]] = field(default_factory=dict)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            self.raw.setdefault(recipient, []).append(envelope.original_content)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[RawSink, int]]:
    port = free_port()
    sink = RawSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=6)
    yield pool
    await pool.close()


@dataclass(frozen=True)
class DkimKey:
    path: Path
    txt_record: bytes  # what DNS answers for <selector>._domainkey.<domain>


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / f"{SELECTOR}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


def settings_for(database_url: str, port: int, **changes: Any) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=database_url,
        db_schema=SCHEMA,
        smtp_port=port,
        smtp_connections=2,
        link_secret=SecretStr("delivery-test-link-secret"),
        public_base_url="https://stolive.test",
        events_api_url="http://127.0.0.1:9",
        **changes,
    )


def verify(message: bytes, key: DkimKey) -> bool:
    """What a receiving mail server does: look the key up in DNS and check the signature."""
    asked = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()

    def dns(name: bytes, timeout: int = 5) -> bytes | None:  # noqa: ARG001
        return key.txt_record if name == asked else None

    return bool(dkim.verify(message, dnsfunc=dns))


def signed_headers(message: bytes) -> set[str]:
    signature = re.search(rb"^DKIM-Signature:(.*?)\r\n(?! )", message, re.S | re.M)
    assert signature is not None, "the message carries a DKIM-Signature"
    tags = dict(
        part.strip().split("=", 1)
        for part in re.sub(r"\s+", "", signature.group(1).decode()).split(";")
        if part
    )
    assert (tags["d"], tags["s"]) == (DOMAIN, SELECTOR)
    return set(tags["h"].lower().split(":"))


async def queue_emails(
    pool: asyncpg.Pool, settings: NotificationsSettings, addresses: list[str]
) -> None:
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO emails (id, dedup_key, kind, recipient, recipient_key, subject,
                                   body_text, body_html)
               VALUES ($1, $2, 'registration_confirmed', $3, $4, 'Je bent aangemeld voor STO LIVE',
                       'Tot dan!', '<p>Tot dan!</p>')""",
            [
                (uuid.uuid4(), f"test:{uuid.uuid4()}", a, person_key(settings.link_key(), a))
                for a in addresses
            ],
        )


def address(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}@school.nl"


async def test_a_confirmation_is_signed_so_the_receiver_verifies_it_against_our_dns(
    pool: asyncpg.Pool, database_url: str, sink: tuple[RawSink, int], dkim_key: DkimKey
) -> None:
    server, port = sink
    settings = settings_for(
        database_url, port, dkim_private_key_path=str(dkim_key.path), dkim_selector=SELECTOR
    )
    to = address("signed")
    await queue_emails(pool, settings, [to])
    await EmailSender(pool, settings).drain()
    [raw] = server.raw[to]
    assert verify(raw, dkim_key)
    assert REQUIRED <= signed_headers(raw)
    tampered = raw.replace(b"Je bent aangemeld", b"Je bent afgemeld", 1)
    assert not verify(tampered, dkim_key), "a changed subject no longer verifies"


async def test_a_newsletter_is_signed_over_its_one_click_unsubscribe_headers(
    pool: asyncpg.Pool, database_url: str, sink: tuple[RawSink, int], dkim_key: DkimKey
) -> None:
    server, port = sink
    settings = settings_for(
        database_url, port, dkim_private_key_path=str(dkim_key.path), dkim_selector=SELECTOR
    )
    readers = [address("lezer") for _ in range(3)]
    mailing_id = await start_mailing(pool, settings, readers, "DK")
    await MailingSender(pool, settings).drain()
    for reader in readers:
        [raw] = server.raw[reader]
        assert verify(raw, dkim_key), reader
        assert REQUIRED | ONE_CLICK <= signed_headers(raw)
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
    progress = await MailingService(pool, settings).progress(mailing_id)
    assert progress["sent"] == 3


async def test_without_a_key_mail_goes_out_unsigned(
    pool: asyncpg.Pool, database_url: str, sink: tuple[RawSink, int]
) -> None:
    server, port = sink
    settings = settings_for(database_url, port)
    to = address("unsigned")
    await queue_emails(pool, settings, [to])
    await EmailSender(pool, settings).drain()
    [raw] = server.raw[to]
    assert b"DKIM-Signature" not in raw


async def test_one_hard_bounce_suppresses_the_address_at_once(
    pool: asyncpg.Pool, database_url: str, sink: tuple[RawSink, int]
) -> None:
    server, port = sink
    settings = settings_for(database_url, port)
    gone = address("gone")
    server.refuse[gone] = "550 5.1.1 Mailbox does not exist"
    sender = EmailSender(pool, settings)
    await queue_emails(pool, settings, [gone])
    await sender.drain()
    assert await bounces_of(pool, settings, gone) == [("hard", 550)]
    assert await suppression_of(pool, settings, gone) == ("hard_bounce", "all")
    await queue_emails(pool, settings, [gone])
    await sender.drain()
    assert await statuses(pool, gone) == ["failed", "suppressed"], "never tried again"


async def test_soft_bounces_suppress_only_after_three_within_thirty_days(
    pool: asyncpg.Pool, database_url: str, sink: tuple[RawSink, int]
) -> None:
    """A 4xx is retried; only when it is still the answer on the last attempt is it a soft
    bounce. Two soft bounces, a month apart from the next, never add up to three."""
    server, port = sink
    settings = settings_for(database_url, port, max_attempts=2)
    full = address("full")
    server.refuse[full] = "452 4.2.2 Mailbox full"
    clock = Clock(datetime.now(UTC))
    sender = EmailSender(pool, settings, clock=clock)

    async def one_email_given_up() -> None:
        await queue_emails(pool, settings, [full])
        await sender.drain()  # first attempt: 452, retried later, no bounce yet
        clock.now += timedelta(minutes=1)
        await sender.drain()  # the last attempt: 452 again, a soft bounce

    await queue_emails(pool, settings, [full])
    await sender.drain()
    assert await bounces_of(pool, settings, full) == [], "a 4xx that will be retried is none"
    clock.now += timedelta(minutes=1)
    await sender.drain()
    await one_email_given_up()
    assert [kind for kind, _ in await bounces_of(pool, settings, full)] == ["soft", "soft"]
    assert await suppression_of(pool, settings, full) is None, "two soft bounces are not enough"

    clock.now += timedelta(days=31)
    await one_email_given_up()
    assert len(await bounces_of(pool, settings, full)) == 1, "the old ones fell out of the window"
    assert await suppression_of(pool, settings, full) is None
    await one_email_given_up()
    await one_email_given_up()
    assert await suppression_of(pool, settings, full) == ("soft_bounce", "all")


async def test_no_answer_from_our_own_mail_server_is_no_bounce(
    pool: asyncpg.Pool, database_url: str
) -> None:
    settings = settings_for(database_url, free_port(), max_attempts=1)  # nothing listens there
    somebody = address("outage")
    await queue_emails(pool, settings, [somebody])
    await EmailSender(pool, settings).drain()
    assert await statuses(pool, somebody) == ["failed"]
    assert await bounces_of(pool, settings, somebody) == []
    assert await suppression_of(pool, settings, somebody) is None


async def test_a_newsletter_refused_for_good_keeps_the_reader_off_the_next_one(
    pool: asyncpg.Pool, database_url: str, sink: tuple[RawSink, int]
) -> None:
    server, port = sink
    settings = settings_for(database_url, port)
    gone, stays = address("weg"), address("blijft")
    server.refuse[gone] = "550 5.1.1 User unknown"
    await start_mailing(pool, settings, [gone, stays], "HB")
    await MailingSender(pool, settings).drain()
    assert await bounces_of(pool, settings, gone) == [("hard", 550)]
    second = await start_mailing(pool, settings, [], "HB")
    await MailingSender(pool, settings).drain()
    progress = await MailingService(pool, settings).progress(second)
    assert (progress["sent"], progress["suppressed"]) == (1, 1)
    assert len(server.raw[stays]) == 2


async def start_mailing(
    pool: asyncpg.Pool, settings: NotificationsSettings, readers: list[str], region: str
) -> uuid.UUID:
    """A newsletter to the confirmed subscribers of ``region`` (``readers`` join it first),
    started as the scheduler starts it."""
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO subscribers (id, email, email_sha256, name, region_code, status,
                                        source, person_key)
               VALUES (gen_random_uuid(), $1, md5($1), 'Lezer', $2, 'confirmed', 'test', $3)""",
            [(r, region, person_key(settings.link_key(), r)) for r in readers],
        )
    mailings = MailingService(pool, settings)
    mailing_id = await mailings.create(
        MailingDraft(
            "Nieuws van Sterk Techniekonderwijs",
            "Alle regio's staan in de startblokken.",
            Audience(kind="subscribers", regions=(region,)),
            include_events=False,
        ),
        "Bureau STO",
    )
    await mailings.schedule(mailing_id, None)
    assert await mailings.start_due() >= 1
    return mailing_id


async def bounces_of(
    pool: asyncpg.Pool, settings: NotificationsSettings, email: str
) -> list[tuple[str, int | None]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind, smtp_code FROM bounces WHERE person_key = $1 ORDER BY bounced_at",
            person_key(settings.link_key(), email),
        )
    return [(r["kind"], r["smtp_code"]) for r in rows]


async def suppression_of(
    pool: asyncpg.Pool, settings: NotificationsSettings, email: str
) -> tuple[str, str] | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT reason, scope FROM suppressed WHERE person_key = $1",
            person_key(settings.link_key(), email),
        )
    return (row["reason"], row["scope"]) if row else None


async def statuses(pool: asyncpg.Pool, email: str) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status FROM emails WHERE recipient = $1 ORDER BY created_at", email
        )
    return [r["status"] for r in rows]
