"""The registrations repository as a port: what the use cases after a sign-up (cancel,
promote, check in, follow an event, erase, read) need of storage, and nothing of how.

``PostgresRegistrations`` (``postgres``) is the real one; ``InMemoryRegistrations``
(``memory``) is the fake the use-case unit tests run on. The contract test
``tests/integration/test_registrations_repository_contract.py`` runs the same cases on both.
Sign-ups themselves do not go through the port: they are stored a batch per statement
(``sign_ups``), which is PostgreSQL's job alone.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sto_registrations.attendance import Attendance
from sto_registrations.domain import AuditNote, EventTerms, Registration, SeatState
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot


class RegistrationsRepository(ABC):
    # -- events ------------------------------------------------------------------------------

    @abstractmethod
    async def store_event(self, event: EventSnapshot) -> EventTerms | None:
        """Keep the snapshot if it is newer than what we hold; the previous terms if so
        (the snapshot's own for a first one), None for an older or repeated revision."""

    @abstractmethod
    async def terms(self, event_id: uuid.UUID, *, for_update: bool = False) -> EventTerms | None:
        """What we know of the event (``for_update``: locked till the transaction ends)."""

    @abstractmethod
    async def seat_state(self, event_id: uuid.UUID, *, for_update: bool = True) -> SeatState | None:
        """The event's terms, seats taken and waiting-list length (``for_update``: locked
        till commit; a page that only shows them reads without the lock)."""

    @abstractmethod
    async def open_events(self, now: datetime) -> list[SeatState]:
        """Published or live events not yet over at ``now`` with their seats, soonest first
        (at most 100)."""

    @abstractmethod
    async def events_by_start(
        self, limit: int = 200, only: Collection[uuid.UUID] | None = None
    ) -> list[EventTerms]:
        """Every event but drafts (``only``: of these ids), latest start first."""

    # -- registrations -----------------------------------------------------------------------

    @abstractmethod
    async def add(self, registration: Registration) -> Registration:
        """Store one registration (its seat or waiting-list place counted); stored as it is,
        with its place in the queue. Sign-ups store theirs a batch at a time instead."""

    @abstractmethod
    async def registration(
        self, registration_id: uuid.UUID, *, for_update: bool = False
    ) -> Registration | None: ...

    @abstractmethod
    async def mark_cancelled(self, registration: Registration, reason: str) -> None:
        """Cancel, giving back the seat or waiting-list place ``registration.status`` held."""

    @abstractmethod
    async def cancel_all_active(self, event_id: uuid.UUID, reason: str) -> list[Registration]:
        """Cancel every active registration of the event; as they were before, in queue order."""

    @abstractmethod
    async def promote_first_waitlisted(self, event_id: uuid.UUID, count: int) -> list[Registration]:
        """The first ``count`` on the waiting list into seats, in queue order, counts moved."""

    @abstractmethod
    async def mark_checked_in(
        self, registration_id: uuid.UUID, organiser: str
    ) -> Registration | None:
        """Checked in now; None when it was already."""

    @abstractmethod
    async def undo_check_in(self, registration_id: uuid.UUID) -> Registration | None:
        """Checked in no more; None when it was not checked in."""

    @abstractmethod
    async def active_registration(self, event_id: uuid.UUID, email: str) -> Registration | None:
        """The registration (not cancelled) this normalised address holds for the event."""

    @abstractmethod
    async def promote_one(self, registration_id: uuid.UUID) -> Registration | None:
        """This registration from the waiting list into a seat, counts moved; None when it
        was not waiting. The caller decided on the event's locked row."""

    @abstractmethod
    async def correct(
        self, registration_id: uuid.UUID, name: str, organisation: str, role: str
    ) -> Registration | None:
        """New name, school and role; None when erased (nothing to correct)."""

    @abstractmethod
    async def waitlist_position(self, registration: Registration) -> int: ...

    @abstractmethod
    async def status_counts(self, event_id: uuid.UUID) -> dict[str, int]:
        """confirmed, waitlisted, cancelled and checked_in."""

    @abstractmethod
    async def attendees(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        region_code: str | None = None,
        role: str | None = None,
    ) -> list[Registration]:
        """An event's registrations in queue order, optionally filtered."""

    @abstractmethod
    async def record_booking(self, group_id: uuid.UUID, booker_id: uuid.UUID) -> None:
        """``booker_id`` signed up the group ``group_id`` (once, however often it is told)."""

    @abstractmethod
    async def booked_colleagues(self, booker_id: uuid.UUID) -> list[Registration]:
        """The colleagues ``booker_id`` signed up, in queue order."""

    # -- attendance (from analytics) ----------------------------------------------------------

    @abstractmethod
    async def attendance(self, registration_id: uuid.UUID) -> Attendance | None:
        """What analytics last said of this registrant's attendance, if anything."""

    @abstractmethod
    async def save_attendance(self, attendance: Attendance) -> None:
        """Keep ``attendance`` as this registrant's (replacing what was kept)."""

    # -- privacy -----------------------------------------------------------------------------

    @abstractmethod
    async def data_keys(self, registrations: Sequence[Registration]) -> dict[uuid.UUID, bytes]:
        """The keys that seal these registrations' contacts in messages (``privacy``); one
        made now for any that has none and is not erased."""

    @abstractmethod
    async def person_records(self, email: str) -> list[dict[str, Any]]:
        """Every registration held for this normalised address, with its event's title."""

    @abstractmethod
    async def erase_person(self, email: str) -> list[uuid.UUID]:
        """Remove the personal fields of the address's registrations and forget their data
        keys (what their messages sealed can no longer be read); their ids."""

    @abstractmethod
    async def anonymise_ended_before(
        self, ended_before: datetime, limit: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Remove the personal fields of at most ``limit`` registrations, not yet erased or
        anonymised, of events that ended before ``ended_before``, and forget their keys;
        their ids by event."""

    # -- messages ----------------------------------------------------------------------------

    @abstractmethod
    async def add_messages(self, messages: Sequence[Message]) -> None:
        """To the outbox, committed with the change that caused them."""

    # -- the audit log -----------------------------------------------------------------------

    @abstractmethod
    async def record(self, note: AuditNote) -> None:
        """An organiser's action to the audit log, committed with the action."""
