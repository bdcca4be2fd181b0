"""Use cases of the events service; the only place that opens a transaction.

Each change loads the event under a row lock, applies a domain rule, saves the result and
writes the messages the rule produced to the outbox, all in one transaction of the ``Store``;
listeners hear of it only after it committed. The store is PostgreSQL in production
(``bootstrap.py``) and the in-memory fake in the use-case tests (``repository/memory.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import EllipsisType

from sto_events import domain
from sto_events.domain import Event, EventRuleViolation, Region, Series
from sto_events.repository import EventFilter, EventsRepository
from sto_events.schools import School, SchoolImportError
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.events import EventStatus
from stolive_shared.errors import DomainError
from stolive_shared.organisers.roles import Organiser
from stolive_shared.store import Store


class EventNotFound(DomainError):
    status = 404
    message = "Evenement niet gevonden"


class RegionNotFound(DomainError):
    status = 404
    message = "Regio niet gevonden"


async def _refuse_unknown_regions(events: EventsRepository, codes: tuple[str, ...]) -> None:
    unknown = await events.unknown_region_codes(codes)
    if unknown:
        raise EventRuleViolation(f"onbekende regio: {', '.join(unknown)}", "region_codes")


@dataclass
class EventsService:
    store: Store[EventsRepository]
    clock: Clock = utc_now
    # Told about every committed change, e.g. the beacon endpoint's status cache.
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    async def create_event(self, event: Event) -> Event:
        domain.validate_new_event(event, self.clock())
        async with self.store.transaction() as events:
            await _refuse_unknown_regions(events, event.region_codes)
            if event.kind == "webinar":
                series = event.series_code or domain.DEFAULT_SERIES
                taken = await events.lock_series_numbers(series)
                if taken is None:
                    raise EventRuleViolation(f"onbekende reeks: {series}", "series_code")
                event = domain.in_series(event, taken)
            await events.insert_event(event)
        return event

    async def get_event(self, event_id: uuid.UUID, *, public_only: bool) -> Event:
        async with self.store.reading() as events:
            event = await events.get_event(event_id)
        if event is None or (public_only and event.status in ("draft", "cancelled")):
            raise EventNotFound()
        return event

    async def list_events(self, where: EventFilter) -> list[Event]:
        async with self.store.reading() as events:
            return await events.list_events(where)

    async def change(
        self,
        event_id: uuid.UUID,
        rule: Callable[[Event], Event],
        audit: Callable[[Event, Event], tuple[Organiser, str, dict[str, object]]] | None = None,
    ) -> Event:
        """Apply ``rule`` to the event under a row lock; save it and its messages together,
        with ``audit``'s row (who, action, detail from the event before and after), if given
        and if anything changed."""
        async with self.store.transaction() as events:
            event = await events.get_event(event_id, for_update=True)
            if event is None:
                raise EventNotFound()
            changed = rule(event)
            if changed is event:
                return event
            if changed.region_codes != event.region_codes:
                await _refuse_unknown_regions(events, changed.region_codes)
            await events.update_event(changed)
            await events.add_messages(changed.events)
            if audit is not None:
                who, action, detail = audit(event, changed)
                await events.record_action(who, action, event.id, detail)
        for listener in self.listeners:
            listener(changed)
        return changed

    async def publish(self, event_id: uuid.UUID) -> Event:
        return await self.change(event_id, domain.publish)

    async def go_live(self, event_id: uuid.UUID) -> Event:
        return await self.change(event_id, domain.go_live)

    async def end(self, event_id: uuid.UUID, replay_url: str | None) -> Event:
        return await self.change(event_id, lambda e: domain.end(e, replay_url))

    async def publish_replay(
        self,
        event_id: uuid.UUID,
        replay_url: str,
        by: Organiser,
        captions_url: str | EllipsisType | None = ...,
    ) -> Event:
        """Set or change an ended event's replay and its captions (``...``: as they are);
        audited (``event_changed``, with both addresses before and after) when it changes."""

        def audit(before: Event, after: Event) -> tuple[Organiser, str, dict[str, object]]:
            return (
                by,
                "event_changed",
                {
                    "change": "replay_published",
                    "replay_url": after.replay_url,
                    "previous_replay_url": before.replay_url,
                    "captions_url": after.captions_url,
                    "previous_captions_url": before.captions_url,
                },
            )

        return await self.change(
            event_id, lambda e: domain.publish_replay(e, replay_url, captions_url), audit
        )

    async def replays(self, limit: int = 200) -> list[Event]:
        """Ended broadcasts with a replay, newest first: the "Terugblikken" page."""
        return await self.list_events(
            EventFilter(
                kind="webinar", status="ended", with_replay=True, newest_first=True, limit=limit
            )
        )

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
        async with self.store.transaction() as events:
            await events.upsert_regions(regions)
        return len(regions)

    async def import_schools(self, schools: list[School]) -> int:
        """All or nothing: a site in a region the programme does not know refuses the file."""
        async with self.store.transaction() as events:
            codes = tuple(sorted({s.region_code for s in schools if s.region_code}))
            unknown = await events.unknown_region_codes(codes)
            if unknown:
                raise SchoolImportError(f"onbekende regio: {', '.join(unknown)}")
            await events.upsert_schools(schools)
        return len(schools)

    async def schools(
        self, query: str = "", region_code: str | None = None, limit: int = 50
    ) -> list[School]:
        async with self.store.reading() as events:
            return await events.search_schools(query.strip(), region_code, limit)

    async def regions(self) -> list[Region]:
        async with self.store.reading() as events:
            return await events.list_regions()

    async def region(self, code: str) -> Region:
        async with self.store.reading() as events:
            region = await events.get_region(code)
        if region is None:
            raise RegionNotFound()
        return region

    async def save_series(self, series: Series) -> None:
        async with self.store.transaction() as events:
            await events.upsert_series(series)

    async def series(self) -> list[Series]:
        async with self.store.reading() as events:
            return await events.list_series()

    async def public_statuses(self) -> dict[uuid.UUID, EventStatus]:
        async with self.store.reading() as events:
            return await events.public_statuses()
