"""The outbox relay's leadership: when the leader's lock connection dies, it stops before the
next leader sends anything, so no two relays ever publish at once.

Two relays with pools of their own (two processes, in effect) on one schema, real PostgreSQL
and the real embedded broker; messages are written all along. The leader's lock connection is
ended from the server side (``pg_terminate_backend``), as a restart, a failover or an idle
timeout in a proxy would end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.events import EventSnapshot, EventUpdated
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.messaging import outbox
from stolive_shared.messaging.relay import OutboxRelay
from stolive_shared.settings import KafkaSettings
from tests.integration.ops_support import running
from tests.support import eventually, read_topic

SCHEMA = "leadertest"


@pytest.fixture(scope="module")
async def pools(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    await apply_migrations(database_url, SCHEMA, [])
    first = await create_pool(database_url, SCHEMA)
    second = await create_pool(database_url, SCHEMA)
    yield first, second
    await first.close()
    await second.close()


async def keep_writing(pool: asyncpg.Pool, event_id: uuid.UUID, written: list[int]) -> None:
    """One revision of one event every 20 ms, each in its own transaction, until cancelled."""
    starts = datetime.now(UTC) + timedelta(days=3)
    revision = 1
    while True:
        revision += 1
        snapshot = EventSnapshot(
            event_id=event_id, revision=revision, kind="webinar", status="published",
            title=f"revision {revision}", starts_at=starts, ends_at=starts + timedelta(hours=1),
        )  # fmt: skip
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, EventUpdated.create(event=snapshot), schema=SCHEMA)
        written.append(revision)
        await asyncio.sleep(0.02)


async def kill_lock_connection(pool: asyncpg.Pool) -> None:
    """End the session that holds the relay's advisory lock, from the server side."""
    async with pool.acquire() as conn:
        ended = await conn.fetchval(
            """SELECT pg_terminate_backend(l.pid) FROM pg_locks l
               JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted
                 AND a.application_name = $1""",
            f"{SCHEMA}-relay",
        )
    assert ended, "the leader's lock connection was found and ended"


async def test_a_leader_whose_lock_connection_dies_stops_before_the_next_leader_sends(
    database_url: str,
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
    kafka: KafkaSettings,
    figures: Callable[[str], None],
) -> None:
    def relay(pool: asyncpg.Pool) -> OutboxRelay:
        return OutboxRelay(
            database_url=database_url, pool=pool, schema=SCHEMA, kafka=kafka,
            probe_interval_s=0.2, poll_interval_s=0.05,
        )  # fmt: skip

    event_id, written = uuid.uuid4(), list[int]()
    loop = asyncio.get_running_loop()
    first, second = relay(pools[0]), relay(pools[1])
    first_task = asyncio.create_task(first.run())
    await eventually(lambda: first.stats.is_leader, timeout_s=90, what="the first relay leads")
    async with running(second):
        writer = asyncio.create_task(keep_writing(pools[0], event_id, written))
        try:
            await eventually(
                lambda: first.stats.published >= 20, timeout_s=90, what="the leader publishes"
            )
            killed_at = loop.time()
            await kill_lock_connection(pools[0])
            await eventually(lambda: not first.stats.is_leader, what="the old leader stops")
            stopped_after = loop.time() - killed_at
            # It has stopped sending; now its process goes away: it could win the lock back,
            # which is fine but would leave nothing to compare.
            first_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first_task
            await eventually(
                lambda: second.stats.published >= 20, timeout_s=90, what="the new leader sends"
            )
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        await eventually(lambda: all_published(pools[1]), timeout_s=90, what="every row published")
    old_last, new_first = first.stats.last_send_at, second.stats.first_send_at

    assert old_last is not None
    assert new_first is not None
    assert old_last < new_first, "the old leader's last send ended before the new one's first"
    async with pools[0].acquire() as conn:
        most = await conn.fetchval("SELECT max(publish_count) FROM outbox")
        stored = await conn.fetch(
            "SELECT payload FROM outbox WHERE key = $1 ORDER BY id", str(event_id)
        )
    assert most == 1, "no row was published by both relays"
    in_outbox = [decode(row["payload"]).event.revision for row in stored]  # type: ignore[attr-defined]
    assert in_outbox[: len(written)] == written
    records = await read_topic(kafka, EVENTS.name, EVENTS.partitions)
    revisions = [
        decode(r.value).event.revision  # type: ignore[attr-defined]
        for r in records
        if r.key == str(event_id).encode()
    ]
    assert revisions == in_outbox, "each message once, in the order it was written"
    figures(
        f"relay leadership: lock connection killed; old leader stopped in {stopped_after:.2f} s, "
        f"its last send {new_first - old_last:.2f} s before the new leader's first; "
        f"{len(in_outbox)} messages, each published once and in order"
    )


async def all_published(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        waiting: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return waiting == 0
