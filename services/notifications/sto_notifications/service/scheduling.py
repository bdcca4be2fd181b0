"""The scheduler: what falls due by the clock (reminders, mailings to start, mailings done)."""

from __future__ import annotations

import asyncio

import asyncpg

from sto_notifications import repository
from sto_notifications.config import NotificationsSettings
from sto_notifications.service.mailings import MailingService
from sto_notifications.service.reactions import NotificationsService
from sto_notifications.service.wakeups import WORK_CHANGED, listening, woken_or_after
from stolive_shared.clock import Clock, utc_now
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.retry import Backoff


class Scheduler:
    """Queues due reminders, starts due mailings and closes finished ones; it sleeps until
    the next moment something is due, or until new work is announced (``WORK_CHANGED``)."""

    name = "scheduler"

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        service: NotificationsService,
        mailings: MailingService,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._service = service
        self._mailings = mailings
        self._clock = clock
        self._wakeup = asyncio.Event()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with listening(self._pool, [WORK_CHANGED], self._wakeup):
                    while True:
                        await self.tick()
                        await woken_or_after(self._wakeup, await self._seconds_to_next())
            except CONNECTION_ERRORS as exc:
                await backoff.wait("scheduler lost PostgreSQL", exc)

    async def _seconds_to_next(self) -> float:
        async with self._pool.acquire() as conn:
            moments = [
                at
                for at in (
                    await repository.next_reminder_at(conn),
                    await repository.next_mailing_at(conn),
                )
                if at is not None
            ]
        poll = self._settings.scheduler_poll_s
        if not moments:
            return poll
        return min(poll, (min(moments) - self._clock()).total_seconds())

    async def tick(self) -> dict[str, int]:
        """One round: everything due by the clock's now. Safe to run from several workers."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self._service.fill_person_keys(conn)
        reminders = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                queued = await self._service.queue_due_reminders(conn)
            reminders += queued
            if queued == 0:
                break
        started = await self._mailings.start_due()
        closed = await self._mailings.close_finished()
        return {"reminders": reminders, "mailings_started": started, "mailings_closed": closed}
