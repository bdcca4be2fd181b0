"""What the use cases need from storage, as a port: events, regions, series and the outbox.

A repository is bound to one transaction of a ``Store`` (``stolive_shared.store``); it opens
none itself. ``postgres.py`` is the real one, ``memory.py`` the fake the use-case tests run on;
the contract test (``tests/integration/test_events_repository_contract.py``) holds them to the
same behaviour.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from sto_events.domain import Event, Region, Series
from sto_events.schools import School
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventKind, EventStatus
from stolive_shared.organisers.roles import Organiser

# What the agenda and the public API show: drafts and cancelled events stay out of sight.
PUBLIC_STATUSES: tuple[EventStatus, ...] = ("published", "live", "ended")
# National webinars and the national day belong on every region's agenda.
NATIONAL_KINDS: tuple[EventKind, ...] = ("webinar", "national_day")


@dataclass(frozen=True)
class EventFilter:
    kind: EventKind | None = None
    status: EventStatus | None = None
    region_code: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    # Still running or yet to come at this moment (an agenda's "upcoming").
    ends_after: datetime | None = None
    series_code: str | None = None
    # Only events with one of these regions (a regional programme leader's scope); None: all.
    within_regions: frozenset[str] | None = None
    public_only: bool = True
    # Only events with a replay (the "Terugblikken" page).
    with_replay: bool = False
    # By start time, latest first (else earliest first).
    newest_first: bool = False
    limit: int = 500


class EventsRepository(ABC):
    """Events, regions, series and outbox messages, within the caller's transaction."""

    @abstractmethod
    async def get_event(self, event_id: uuid.UUID, *, for_update: bool = False) -> Event | None:
        """The event, if stored; ``for_update`` locks it until the transaction ends."""

    @abstractmethod
    async def list_events(self, where: EventFilter) -> list[Event]:
        """The events ``where`` selects, by start time (then id; both reversed with
        ``newest_first``), at most ``where.limit``.

        A region's list includes the national events (``NATIONAL_KINDS``).
        """

    @abstractmethod
    async def insert_event(self, event: Event) -> None:
        """Store a new event; ``DuplicateSeriesNumber`` if its number is taken in its series."""

    @abstractmethod
    async def update_event(self, event: Event) -> None:
        """Store an event's new state; its kind and place in a series never change."""

    @abstractmethod
    async def unknown_region_codes(self, codes: tuple[str, ...]) -> list[str]:
        """The codes no stored region has, in the order given."""

    @abstractmethod
    async def lock_series_numbers(self, code: str) -> set[int] | None:
        """The broadcast numbers taken in a series, under a lock on the series; None if unknown.

        The lock makes two organisers creating a broadcast at once take turns, so neither
        picks the number the other is about to use.
        """

    @abstractmethod
    async def upsert_series(self, series: Series) -> None:
        """Add the series, or give the stored one this title and description."""

    @abstractmethod
    async def list_series(self) -> list[Series]:
        """Every series, by title."""

    @abstractmethod
    async def public_statuses(self) -> dict[uuid.UUID, EventStatus]:
        """Every event's status except drafts: what the beacon endpoint checks against."""

    @abstractmethod
    async def upsert_regions(self, regions: list[Region]) -> None:
        """Add the regions, or update the stored ones with the same code."""

    @abstractmethod
    async def upsert_schools(self, schools: list[School]) -> None:
        """Add the school sites, or update the stored ones with the same code."""

    @abstractmethod
    async def search_schools(self, query: str, region_code: str | None, limit: int) -> list[School]:
        """Sites whose name or place contains ``query`` (any case), in ``region_code`` if
        given, by name."""

    @abstractmethod
    async def list_regions(self) -> list[Region]:
        """Every region, by name."""

    @abstractmethod
    async def get_region(self, code: str) -> Region | None:
        """The region with this code, if stored."""

    @abstractmethod
    async def add_messages(self, messages: list[Message]) -> None:
        """Write the messages to the outbox: they are published once the transaction commits."""

    @abstractmethod
    async def record_action(
        self, who: Organiser, action: str, event_id: uuid.UUID, detail: dict[str, object]
    ) -> None:
        """An organiser's action in the audit log, committed with the change it describes."""
