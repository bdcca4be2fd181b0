"""Use cases of the events service; the only place that opens a transaction.

Each change loads the event under a row lock, applies a domain rule, saves the result and
writes the messages the rule produced to the outbox, all in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from sto_events import domain, repository
from sto_events.domain import DuplicateSeriesNumber, Event, EventRuleViolation, Region
from sto_events.repository import EventFilter, Series
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.events import EventStatus
from stolive_shared.errors import DomainError
from stolive_shared.messaging import outbox


class EventNotFound(DomainError):
    status = 404
    message = "Evenement niet gevonden"


class RegionNotFound(DomainError):
    status = 404
    message = "Regio niet gevonden"


@dataclass
class EventsService:
    pool: asyncpg.Pool
    schema: str
    clock: Clock = utc_now
    # Told about every committed change, e.g. the beacon endpoint's status cache.
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    async def create_event(self, event: Event) -> Event:
        domain.validate_new_event(event, self.clock())
        async with self.pool.acquire() as conn, conn.transaction():
            unknown = await repository.unknown_region_codes(conn, event.region_codes)
            if unknown:
                raise EventRuleViolation(f"onbekende regio: {', '.join(unknown)}", "region_codes")
            if event.kind == "webinar":
                series = event.series_code or domain.DEFAULT_SERIES
                taken = await repository.lock_series_numbers(conn, series)
                if taken is None:
                    raise EventRuleViolation(f"onbekende reeks: {series}", "series_code")
                event = domain.in_series(event, taken)
            try:
                await repository.insert_event(conn, event)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateSeriesNumber(
                    f"uitzending #{event.series_number} bestaat al in deze reeks", "series_number"
                ) from exc
        return event

    async def get_event(self, event_id: uuid.UUID, *, public_only: bool) -> Event:
        async with self.pool.acquire() as conn:
            event = await repository.get_event(conn, event_id)
        if event is None or (public_only and event.status in ("draft", "cancelled")):
            raise EventNotFound()
        return event

    async def list_events(self, where: EventFilter) -> list[Event]:
        async with self.pool.acquire() as conn:
            return await repository.list_events(conn, where)

    async def change(self, event_id: uuid.UUID, rule: Callable[[Event], Event]) -> Event:
        """Apply ``rule`` to the event under a row lock; save it and its messages together."""
        async with self.pool.acquire() as conn, conn.transaction():
            event = await repository.get_event(conn, event_id, for_update=True)
            if event is None:
                raise EventNotFound()
            changed = rule(event)
            if changed is event:
                return event
            if changed.region_codes != event.region_codes:
                unknown = await repository.unknown_region_codes(conn, changed.region_codes)
                if unknown:
                    raise EventRuleViolation(
                        f"onbekende regio: {', '.join(unknown)}", "region_codes"
                    )
            await repository.update_event(conn, changed)
            await outbox.enqueue_many(conn, changed.events, schema=self.schema)
        for listener in self.listeners:
            listener(changed)
        return changed

    async def publish(self, event_id: uuid.UUID) -> Event:
        return await self.change(event_id, domain.publish)

    async def go_live(self, event_id: uuid.UUID) -> Event:
        return await self.change(event_id, domain.go_live)

    async def end(self, event_id: uuid.UUID, replay_url: str | None) -> Event:
        return await self.change(event_id, lambda e: domain.end(e, replay_url))

    async def cancel(self, event_id: uuid.UUID, reason: str) -> Event:
        return await self.change(event_id, lambda e: domain.cancel(e, reason))

    async def reschedule(
        self, event_id: uuid.UUID, starts_at: datetime, ends_at: datetime
    ) -> Event:
        now = self.clock()
        return await self.change(event_id, lambda e: domain.reschedule(e, starts_at, ends_at, now))

    async def update(self, event_id: uuid.UUID, changes: dict[str, object]) -> Event:
        return await self.change(event_id, lambda e: domain.update(e, changes))

    async def import_regions(self, regions: list[Region]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.upsert_regions(conn, regions)
        return len(regions)

    async def regions(self) -> list[Region]:
        async with self.pool.acquire() as conn:
            return await repository.list_regions(conn)

    async def region(self, code: str) -> Region:
        async with self.pool.acquire() as conn:
            region = await repository.get_region(conn, code)
        if region is None:
            raise RegionNotFound()
        return region

    async def save_series(self, series: Series) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.upsert_series(conn, series)

    async def series(self) -> list[Series]:
        async with self.pool.acquire() as conn:
            return await repository.list_series(conn)

    async def public_statuses(self) -> dict[uuid.UUID, EventStatus]:
        async with self.pool.acquire() as conn:
            return await repository.public_statuses(conn)
