"""The events repository as plain data in memory: the fake the use-case unit tests run on.

It keeps what the PostgreSQL repository keeps and answers as it does (the contract test runs
the same cases on both). Transactions and their rollback are the ``InMemoryStore``'s: it hands
this repository a copy of the state and keeps the copy only when the block succeeds, one
transaction at a time, so ``for_update`` and the series lock have nothing left to do here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sto_events.domain import DEFAULT_SERIES, DuplicateSeriesNumber, Event, Region, Series
from sto_events.repository.port import (
    NATIONAL_KINDS,
    PUBLIC_STATUSES,
    EventFilter,
    EventsRepository,
)
from sto_events.schools import School
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventStatus
from stolive_shared.organisers.roles import Organiser
from stolive_shared.store import InMemoryStore

# What a freshly migrated database holds (migration 0002 adds the STO LIVE series).
STO_LIVE = Series(
    DEFAULT_SERIES, "STO LIVE", "De genummerde online uitzendingen van Sterk Techniekonderwijs"
)


@dataclass
class EventsState:
    events: dict[uuid.UUID, Event] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    schools: dict[str, School] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=lambda: {STO_LIVE.code: STO_LIVE})
    outbox: list[Message] = field(default_factory=list)
    # (account id, action, event id, detail): what the audit log would hold.
    audit: list[tuple[int, str, uuid.UUID, dict[str, object]]] = field(default_factory=list)


def memory_store(state: EventsState | None = None) -> InMemoryStore[EventsState, EventsRepository]:
    """A store for the events service with nothing in it but what the migrations add."""
    return InMemoryStore(state or EventsState(), InMemoryEventsRepository)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _as_stored(event: Event) -> Event:
    """The event as PostgreSQL gives it back: times in UTC, regions sorted, no messages."""
    return replace(
        event,
        starts_at=event.starts_at.astimezone(UTC),
        ends_at=event.ends_at.astimezone(UTC),
        registration_opens_at=_utc(event.registration_opens_at),
        registration_closes_at=_utc(event.registration_closes_at),
        reminder_offsets_hours=tuple(float(hours) for hours in event.reminder_offsets_hours),
        region_codes=tuple(sorted(event.region_codes)),
        events=[],
    )


def _selected(event: Event, where: EventFilter) -> bool:
    """``where`` as the SQL reads it (an empty value filters nothing)."""
    return all(
        (
            not where.public_only or event.status in PUBLIC_STATUSES,
            not where.kind or event.kind == where.kind,
            not where.status or event.status == where.status,
            not where.region_code
            or where.region_code in event.region_codes
            or event.kind in NATIONAL_KINDS,
            where.within_regions is None or not where.within_regions.isdisjoint(event.region_codes),
            not where.starts_from or event.starts_at >= where.starts_from,
            not where.starts_before or event.starts_at < where.starts_before,
            not where.ends_after or event.ends_at > where.ends_after,
            not where.series_code or event.series_code == where.series_code,
            not where.with_replay or event.replay_url is not None,
        )
    )


class InMemoryEventsRepository(EventsRepository):
    def __init__(self, state: EventsState) -> None:
        self.state = state

    async def get_event(
        self,
        event_id: uuid.UUID,
        *,
        for_update: bool = False,  # noqa: ARG002 (one transaction at a time: no lock needed)
    ) -> Event | None:
        event = self.state.events.get(event_id)
        return replace(event, events=[]) if event else None

    async def list_events(self, where: EventFilter) -> list[Event]:
        chosen = [e for e in self.state.events.values() if _selected(e, where)]
        chosen.sort(key=lambda e: (e.starts_at, e.id), reverse=where.newest_first)
        return [replace(e, events=[]) for e in chosen[: where.limit]]

    async def insert_event(self, event: Event) -> None:
        if event.id in self.state.events:
            raise ValueError(f"event {event.id} is stored already")
        place = (event.series_code, event.series_number)
        if None not in place and any(
            (other.series_code, other.series_number) == place
            for other in self.state.events.values()
        ):
            raise DuplicateSeriesNumber.taken(event.series_number)
        self.state.events[event.id] = _as_stored(event)

    async def update_event(self, event: Event) -> None:
        stored = self.state.events.get(event.id)
        if stored is None:
            return  # as an UPDATE that finds no row
        self.state.events[event.id] = _as_stored(
            replace(
                event,
                kind=stored.kind,
                series_code=stored.series_code,
                series_number=stored.series_number,
            )
        )

    async def unknown_region_codes(self, codes: tuple[str, ...]) -> list[str]:
        return [code for code in codes if code not in self.state.regions]

    async def lock_series_numbers(self, code: str) -> set[int] | None:
        if code not in self.state.series:
            return None
        return {
            e.series_number
            for e in self.state.events.values()
            if e.series_code == code and e.series_number is not None
        }

    async def upsert_series(self, series: Series) -> None:
        self.state.series[series.code] = series

    async def list_series(self) -> list[Series]:
        return sorted(self.state.series.values(), key=lambda s: (s.title, s.code))

    async def public_statuses(self) -> dict[uuid.UUID, EventStatus]:
        return {e.id: e.status for e in self.state.events.values() if e.status != "draft"}

    async def upsert_regions(self, regions: list[Region]) -> None:
        for region in regions:
            self.state.regions[region.code] = region

    async def upsert_schools(self, schools: list[School]) -> None:
        self.state.schools.update((school.code, school) for school in schools)

    async def search_schools(self, query: str, region_code: str | None, limit: int) -> list[School]:
        wanted = query.casefold()
        found = [
            s
            for s in self.state.schools.values()
            if (wanted in s.name.casefold() or wanted in s.place.casefold())
            and (region_code is None or s.region_code == region_code)
        ]
        return sorted(found, key=lambda s: (s.name, s.code))[:limit]

    async def list_regions(self) -> list[Region]:
        return sorted(self.state.regions.values(), key=lambda r: (r.name, r.code))

    async def get_region(self, code: str) -> Region | None:
        return self.state.regions.get(code)

    async def add_messages(self, messages: list[Message]) -> None:
        self.state.outbox.extend(messages)

    async def record_action(
        self, who: Organiser, action: str, event_id: uuid.UUID, detail: dict[str, object]
    ) -> None:
        self.state.audit.append((who.account_id, action, event_id, dict(detail)))
