"""Stop the notifications worker in the middle of a 2,000-recipient mailing, start it again:
every recipient gets the newsletter, and nobody gets two different messages.

A SIGTERM (a deploy, or the launcher restarting the worker) is a stop, not a crash: what the
server accepted is recorded before the process exits, so nobody gets the newsletter twice.

The honest part: SMTP cannot join a database transaction, so a message the server accepted in
the last moment before the kill may not be recorded yet. The design (``service/sending.py``,
"the send/crash window") bounds that to one message per SMTP connection (a connection hands
over no message before the previous one is recorded sent) and resends it with the same
Message-ID. This test measures exactly that: it records which rows were claimed ('sending')
when the process died, and requires every second delivery to be one of them, with the same
Message-ID, and at most one per connection (``CONNECTIONS``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from sto_notifications.bootstrap import DEFINITION
from sto_notifications.config import NotificationsSettings
from sto_notifications.domain import Audience
from sto_notifications.service import MailingDraft, MailingService
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.settings import KafkaSettings
from tests.support import SmtpSink, eventually

SCHEMA = "notifications"
RECIPIENTS = 2_000
CONNECTIONS = 4
RATE_PER_S = 500


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=4)
    yield pool
    await pool.close()


def start_worker(
    database_url: str, kafka: KafkaSettings, smtp_port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DB_SCHEMA": SCHEMA,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_CONNECTIONS": str(CONNECTIONS),
        "MAIL_RATE_PER_S": str(RATE_PER_S),
        "LINK_SECRET": "crash-test-link-secret",
        "PUBLIC_BASE_URL": "https://stolive.test",
        "EVENTS_API_URL": "http://127.0.0.1:9",
        "SCHEDULER_POLL_S": "0.5",
    }
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "sto_notifications", "worker"],
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_stopped_mid_mailing_then_restarted_mails_everyone_once(
    stop: signal.Signals,
    pool: asyncpg.Pool,
    database_url: str,
    kafka: KafkaSettings,
    smtp: tuple[SmtpSink, int],
    tmp_path: Path,
    figures: Callable[[str], None],
) -> None:
    sink, smtp_port = smtp
    sink.received.clear()
    region = stop.name[-4:]  # an audience of this run's readers only
    prefix = f"lezer-{region.lower()}-"
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO subscribers (id, email, email_sha256, name, region_code, status, source)
               SELECT gen_random_uuid(), $2 || n || '@school.nl', md5($2 || n),
                      'Lezer ' || n, $3, 'confirmed', 'test'
               FROM generate_series(1, $1) AS n""",
            RECIPIENTS,
            prefix,
            region,
        )
    settings = NotificationsSettings(
        database_url=database_url,
        db_schema=SCHEMA,
        link_secret=SecretStr("crash-test-link-secret"),
        public_base_url="https://stolive.test",
    )
    mailings = MailingService(pool, settings)
    mailing_id = await mailings.create(
        MailingDraft(
            "STO LIVE-webinar over wat we leren van onderzoek",
            "Alle regio's staan in de startblokken.\n\n## Aanmelden\n\nTot 6 maart!",
            Audience(kind="subscribers", regions=(region,)),
            include_events=False,
        ),
        "Bureau STO",
    )
    await mailings.schedule(mailing_id, None)

    async def sent() -> int:
        return int((await mailings.progress(mailing_id))["sent"])

    log = tmp_path / "worker.log"
    first = start_worker(database_url, kafka, smtp_port, log)
    try:
        await eventually(lambda: _at_least(sent, RECIPIENTS // 4), timeout_s=60, interval_s=0.02,
                         what="a quarter of the mailing sent")  # fmt: skip
        os.killpg(first.pid, stop)
        killed_at = time.monotonic()
        await asyncio.to_thread(first.wait, 20)
        exited_after_s = time.monotonic() - killed_at
    finally:
        if first.poll() is None:
            first.kill()
    async with pool.acquire() as conn:
        in_flight = {
            r["email"]
            for r in await conn.fetch(
                "SELECT email FROM mailing_recipients WHERE mailing_id = $1 AND status = 'sending'",
                mailing_id,
            )
        }
    sent_at_kill = await sent()
    await asyncio.sleep(0.3)  # let the sink finish what it accepted
    delivered_at_kill = len(sink.received)

    second = start_worker(database_url, kafka, smtp_port, log)
    try:
        await eventually(
            lambda: _status_is(mailings, mailing_id, "sent"), timeout_s=90, what="mailing sent"
        )
        finished_after_s = time.monotonic() - killed_at
    finally:
        second.send_signal(signal.SIGTERM)
        told = time.monotonic()
        await asyncio.to_thread(second.wait, 30)
        second_stopped_s = time.monotonic() - told

    message_ids: dict[str, set[str]] = defaultdict(set)
    deliveries: dict[str, int] = defaultdict(int)
    for email in sink.received:
        for recipient in email.recipients:
            message_ids[recipient].add(str(email.message["Message-ID"]))
            deliveries[recipient] += 1
    expected = {f"{prefix}{n}@school.nl" for n in range(1, RECIPIENTS + 1)}
    twice = {r for r, count in deliveries.items() if count > 1}
    progress = await mailings.progress(mailing_id)
    figures(
        f"mailing {stop.name}: {RECIPIENTS:,} recipients over {CONNECTIONS} connections at "
        f"{RATE_PER_S}/s; killed after {sent_at_kill} recorded sent ({delivered_at_kill} "
        f"delivered, so {delivered_at_kill - sent_at_kill} accepted but not yet recorded), "
        f"{len(in_flight)} claimed at the kill; exited {exited_after_s:.1f}s after the signal; "
        f"after restart {len(deliveries)} received, "
        f"{len(twice)} delivered twice (same Message-ID; bound: {CONNECTIONS}, one per "
        f"connection), 0 lost; "
        f"done {finished_after_s:.1f}s after the kill; the restarted worker stopped "
        f"{second_stopped_s:.1f}s after its SIGTERM"
    )
    assert set(deliveries) == expected, "every recipient got the newsletter, nobody else did"
    assert all(len(ids) == 1 for ids in message_ids.values()), "never two different messages"
    if stop == signal.SIGTERM:
        assert twice == set(), "a stop records every accepted message before it exits"
        assert delivered_at_kill == sent_at_kill, "nothing accepted was left unrecorded"
    assert twice <= in_flight, "only a row in flight at the kill can arrive twice"
    assert len(twice) <= CONNECTIONS, "at most the message in flight on each connection"
    assert progress["sent"] == RECIPIENTS
    assert progress["queued"] == progress["failed"] == 0
    assert 0 < sent_at_kill < RECIPIENTS, "the kill fell in the middle of the mailing"


async def _at_least(count: Callable[[], object], target: int) -> bool:
    value = count()
    assert asyncio.iscoroutine(value)
    return int(await value) >= target


async def _status_is(mailings: MailingService, mailing_id: uuid.UUID, status: str) -> bool:
    progress = await mailings.progress(mailing_id)
    return bool(progress["status"] == status)
