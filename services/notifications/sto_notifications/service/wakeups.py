"""How the notifications workers learn of new work without polling: PostgreSQL NOTIFY on two
channels, sent in the transaction that made the work (so a wakeup never precedes its rows)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from stolive_shared.db import CONNECTION_ERRORS

# An e-mail was queued: the e-mail sender looks.
EMAIL_QUEUED = "notifications_email_queued"
# A reminder was planned or a mailing scheduled or started: the scheduler and the mailing
# sender look.
WORK_CHANGED = "notifications_work_changed"


async def notify(conn: asyncpg.Connection, channel: str) -> None:
    await conn.execute("SELECT pg_notify($1, '')", channel)


@contextlib.asynccontextmanager
async def listening(
    pool: asyncpg.Pool,
    channels: list[str],
    wakeup: asyncio.Event,
    prepare: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> AsyncIterator[asyncpg.Connection]:
    """A connection woken by ``channels`` (``prepare``d first: a sender takes its key on it);
    its listeners are removed before it goes back to the pool, so a stopped loop leaves none."""

    def wake(*_: object) -> None:
        wakeup.set()

    conn: asyncpg.Connection = await pool.acquire()
    try:
        if prepare is not None:
            await prepare(conn)
        for channel in channels:
            await conn.add_listener(channel, wake)
        yield conn
    finally:
        with contextlib.suppress(*CONNECTION_ERRORS):
            for channel in channels:
                await conn.remove_listener(channel, wake)
        await pool.release(conn)


async def woken_or_after(wakeup: asyncio.Event, seconds: float) -> None:
    """Wait until woken or ``seconds`` have passed, whichever comes first."""
    wakeup.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wakeup.wait(), max(0.01, seconds))
