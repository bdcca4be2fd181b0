"""The e-mail sender against a real PostgreSQL that drops its sessions mid-way
(``pg_terminate_backend``): what it had claimed is sent again once it has reconnected, without
a restart, and nobody gets an e-mail twice, also with a second sender running beside it.

Before: the sender took back the same advisory key on its new session, so its claimed rows
looked owned by a live sender and stayed in 'sending' until the process restarted; and a
sender whose lock session alone dropped kept sending rows another sender had already taken
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from sto_notifications.bootstrap import DEFINITION
from sto_notifications.config import NotificationsSettings
from sto_notifications.repository import SENDER_LOCK_CLASS
from sto_notifications.service import EmailSender
from stolive_shared.db import apply_migrations, create_pool
from tests.support import SmtpSink, eventually

SCHEMA = "notifications"
EMAILS = 40


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=4)
    yield pool
    await pool.close()


@contextlib.asynccontextmanager
async def sender_pool(database_url: str, name: str) -> AsyncIterator[asyncpg.Pool]:
    """A sender's own pool, its sessions named so the test can cut exactly them."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=4,
        server_settings={"search_path": f"{SCHEMA},public", "application_name": name},
    )
    assert pool is not None
    try:
        yield pool
    finally:
        pool.terminate()


@contextlib.asynccontextmanager
async def running(sender: EmailSender) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sender.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def settings_for(database_url: str, smtp_port: int, **changes: Any) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=database_url,
        db_schema=SCHEMA,
        smtp_port=smtp_port,
        smtp_connections=2,
        link_secret=SecretStr("session-test-link-secret"),
        public_base_url="https://stolive.test",
        events_api_url="http://127.0.0.1:9",
        **changes,
    )


async def queue_emails(pool: asyncpg.Pool, prefix: str) -> set[str]:
    addresses = {f"{prefix}-{n}@school.nl" for n in range(EMAILS)}
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO emails (id, dedup_key, kind, recipient, recipient_key, subject,
                                   body_text, body_html)
               VALUES ($1, $2, 'registration_confirmed', $3, $4, 'Je bent aangemeld',
                       'Tot dan!', '<p>Tot dan!</p>')""",
            [(uuid.uuid4(), f"test:{a}", a, f"key:{a}") for a in addresses],
        )
    return addresses


async def statuses(pool: asyncpg.Pool, addresses: set[str]) -> Counter[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status FROM emails WHERE recipient = ANY($1::text[])", list(addresses)
        )
    return Counter(r["status"] for r in rows)


def deliveries(sink: SmtpSink, addresses: set[str]) -> Counter[str]:
    return Counter(r for email in list(sink.received) for r in email.recipients if r in addresses)


async def test_after_every_session_of_the_sender_is_cut_its_claimed_emails_still_go_once(
    pool: asyncpg.Pool, database_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    """A database blip for this sender: every one of its sessions is terminated while it has
    e-mails claimed and under way. The grace for other senders' rows is an hour here, so only
    the sender itself can have put its own rows back."""
    sink, port = smtp
    addresses = await queue_emails(pool, f"blip-{uuid.uuid4().hex[:6]}")
    sink.answer_delay_s = 0.05
    try:
        async with sender_pool(database_url, "sender-blip") as own_pool:
            sender = EmailSender(own_pool, settings_for(database_url, port, orphan_grace_s=3600))
            async with running(sender) as task:
                await eventually(lambda: len(deliveries(sink, addresses)) >= 5,
                                 interval_s=0.01, what="the sender under way")  # fmt: skip
                key_before = sender.identity.key
                async with pool.acquire() as conn:
                    cut = await conn.fetchval(
                        """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                           WHERE application_name = 'sender-blip'"""
                    )
                assert cut >= 1
                await eventually(
                    lambda: _all_sent(pool, addresses), timeout_s=60, what="every e-mail sent"
                )
                assert not task.done(), "the same sender carried on, no restart"
            assert sender.identity.key != key_before, "a new session holds a new key"
    finally:
        sink.answer_delay_s = 0.0
    counts = deliveries(sink, addresses)
    assert set(counts) == addresses, "every e-mail arrived"
    assert [a for a, n in counts.items() if n > 1] == [], "none arrived twice"


async def test_a_sender_whose_lock_session_drops_stops_and_the_other_never_sends_its_rows_too(
    pool: asyncpg.Pool, database_url: str, smtp: tuple[SmtpSink, int]
) -> None:
    """Two live senders. The session holding the first one's key is terminated while it has
    rows claimed: the second sender sees that key dead at once, but the first is alive and
    may be finishing a send. It must not send those rows too; the first takes them back
    itself once it holds a new key."""
    sink, port = smtp
    addresses = await queue_emails(pool, f"pair-{uuid.uuid4().hex[:6]}")
    sink.answer_delay_s = 0.05
    try:
        async with (
            sender_pool(database_url, "sender-one") as one_pool,
            sender_pool(database_url, "sender-two") as two_pool,
        ):
            one = EmailSender(one_pool, settings_for(database_url, port))
            two = EmailSender(two_pool, settings_for(database_url, port))
            async with running(one):
                await eventually(lambda: len(deliveries(sink, addresses)) >= 5,
                                 interval_s=0.01, what="the first sender under way")  # fmt: skip
                async with running(two):
                    async with pool.acquire() as conn:
                        cut = await conn.fetchval(
                            """SELECT count(pg_terminate_backend(pid)) FROM pg_locks
                               WHERE locktype = 'advisory' AND classid = $1 AND objid = $2
                                 AND granted""",
                            SENDER_LOCK_CLASS,
                            one.identity.key,
                        )
                    assert cut == 1
                    await eventually(
                        lambda: _all_sent(pool, addresses), timeout_s=60, what="every e-mail sent"
                    )
    finally:
        sink.answer_delay_s = 0.0
    counts = deliveries(sink, addresses)
    assert set(counts) == addresses, "every e-mail arrived"
    assert [a for a, n in counts.items() if n > 1] == [], "none arrived twice"
    assert one.stats.sent + two.stats.sent == EMAILS


async def _all_sent(pool: asyncpg.Pool, addresses: set[str]) -> bool:
    return await statuses(pool, addresses) == Counter({"sent": EMAILS})
