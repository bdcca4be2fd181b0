"""A backup made with `stolive backup` while the platform holds real data, restored with
`stolive restore` into a fresh database, and the platform carries on from it: migrations find
nothing to do, the relay publishes the sign-up the dump held unpublished, and a new sign-up is
accepted next to the restored one.

Real PostgreSQL, pg_dump and pg_restore, the real broker; the registrations app in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from sto_registrations.bootstrap import DEFINITION as REGISTRATIONS
from sto_registrations.config import RegistrationsSettings
from stolive_shared.contracts.codec import header
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.topics import REGISTRATIONS as REGISTRATIONS_TOPIC
from stolive_shared.db import apply_migrations, create_pool, with_database
from stolive_shared.messaging.relay import OutboxRelay
from stolive_shared.settings import KafkaSettings
from tests.support import eventually, form_token, read_topic


async def stolive(database_url: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stolive.ops", *args,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, output.decode()
    return output.decode()


@contextlib.asynccontextmanager
async def registrations(database_url: str, kafka: KafkaSettings) -> AsyncIterator[Platform]:
    settings = RegistrationsSettings(
        database_url=database_url, link_secret=SecretStr("backup-test-link-secret"),
        session_secret=SecretStr("backup-test-session-secret"),
        public_base_url="http://sto.test", events_api_url="http://127.0.0.1:9", kafka=kafka,
        signup_form_token_min_age_s=0,
    )  # fmt: skip
    pool = await create_pool(database_url, "registrations", max_size=4)
    app = REGISTRATIONS.app(REGISTRATIONS.runtime(settings, pool))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sto.test") as client:
            yield Platform(client, app.state.registrations, pool)
    finally:
        await app.state.registrations.close()
        await pool.close()


class Platform:
    def __init__(self, client: httpx.AsyncClient, service: Any, pool: asyncpg.Pool) -> None:
        self.client, self.service, self.pool = client, service, pool

    async def event(self) -> uuid.UUID:
        starts = datetime.now(UTC) + timedelta(days=12)
        event = EventSnapshot(
            event_id=uuid.uuid4(), revision=1, kind="webinar", status="published",
            title="STO LIVE: herstel na een back-up", starts_at=starts,
            ends_at=starts + timedelta(hours=1), capacity=40, waitlist_enabled=True,
        )  # fmt: skip
        async with self.service.store.transaction() as repository:
            await self.service.apply_event(repository, event)
        return event.event_id

    async def sign_up(self, event_id: uuid.UUID, email: str) -> None:
        answer = await self.client.post(
            f"/api/events/{event_id}/registrations",
            json={
                "name": "Anna de Vries", "email": email, "organisation": "Wellant College",
                "role": "docent", "privacy_consent": True,
                "form_token": await form_token(self.client, "", event_id),
            },
        )  # fmt: skip
        assert answer.status_code == 202, answer.text

    async def registered(self, event_id: uuid.UUID) -> int:
        async with self.pool.acquire() as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM registrations WHERE event_id = $1", event_id
            )
            return count

    async def has(self, event_id: uuid.UUID, count: int) -> bool:
        return await self.registered(event_id) >= count


async def test_a_restored_backup_carries_on_where_the_dump_left_off(
    database_url: str,
    postgres_server: str,
    kafka: KafkaSettings,
    tmp_path: Path,
    figures: Callable[[str], None],
) -> None:
    await apply_migrations(database_url, "registrations", [REGISTRATIONS.migrations])
    async with registrations(database_url, kafka) as before:
        event_id = await before.event()
        await before.sign_up(event_id, f"voor-{uuid.uuid4().hex[:8]}@school.nl")
        await eventually(lambda: before.has(event_id, 1), what="the sign-up stored")
        async with before.pool.acquire() as conn:
            waiting = await conn.fetch(
                "SELECT message_id FROM outbox WHERE published_at IS NULL ORDER BY id"
            )
    assert waiting, "the dump holds messages not yet published"

    dump = tmp_path / "stolive.dump"
    await stolive(database_url, "backup", str(dump))
    restored_url = with_database(postgres_server, f"t_restored_{uuid.uuid4().hex[:8]}")
    try:
        await stolive(restored_url, "restore", str(dump))
        assert (
            await apply_migrations(restored_url, "registrations", [REGISTRATIONS.migrations]) == []
        )
        async with registrations(restored_url, kafka) as after:
            assert await after.registered(event_id) == 1
            relay = OutboxRelay(
                database_url=restored_url, pool=after.pool, schema="registrations", kafka=kafka
            )
            task = asyncio.create_task(relay.run())
            try:
                await eventually(lambda: relay.stats.published >= len(waiting), what="published")
                await after.sign_up(event_id, f"na-{uuid.uuid4().hex[:8]}@school.nl")
                await eventually(lambda: after.has(event_id, 2), what="the new sign-up stored")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        admin = await asyncpg.connect(postgres_server)
        await admin.execute(
            f'DROP DATABASE IF EXISTS "{restored_url.rsplit("/", 1)[-1]}" WITH (FORCE)'
        )
        await admin.close()
    on_topic = await read_topic(kafka, REGISTRATIONS_TOPIC.name, REGISTRATIONS_TOPIC.partitions)
    ids = {header(r.headers, "message_id") for r in on_topic}
    assert {str(row["message_id"]) for row in waiting} <= ids
    figures(
        f"backup and restore: {dump.stat().st_size} bytes dumped; after the restore "
        f"{len(waiting)} unpublished message(s) published and a new sign-up accepted"
    )
