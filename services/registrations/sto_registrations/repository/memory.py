"""The registrations repository in memory: the fake the use-case unit tests run on.

It keeps what the PostgreSQL tables keep (an event's terms with its seat counts, each
registration with the moments of its changes, the bookings, the outbox) and answers as the
SQL does; the contract test holds the two to the same cases. Run it in an ``InMemoryStore``
for transactions (``stolive_shared.store``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sto_registrations.attendance import Attendance
from sto_registrations.domain import Applicant, AuditNote, EventTerms, Registration, SeatState
from sto_registrations.repository.port import RegistrationsRepository
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.privacy.sealing import new_key


@dataclass
class EventRow:
    terms: EventTerms
    confirmed: int = 0
    waitlisted: int = 0


@dataclass
class RegistrationRow:
    registration: Registration
    confirmed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    checked_in_by: str | None = None


@dataclass
class RegistrationsState:
    events: dict[uuid.UUID, EventRow] = field(default_factory=dict)
    registrations: dict[uuid.UUID, RegistrationRow] = field(default_factory=dict)
    bookings: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)  # (group, booker)
    outbox: list[Message] = field(default_factory=list)
    keys: dict[uuid.UUID, bytes] = field(default_factory=dict)  # privacy's data keys
    audit: list[AuditNote] = field(default_factory=list)
    attendance: dict[uuid.UUID, Attendance] = field(default_factory=dict)
    last_queue_number: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryRegistrations(RegistrationsRepository):
    def __init__(self, state: RegistrationsState) -> None:
        self.state = state

    # -- events ------------------------------------------------------------------------------

    async def store_event(self, event: EventSnapshot) -> EventTerms | None:
        known = self.state.events.get(event.event_id)
        if known is not None and known.terms.revision >= event.revision:
            return None
        terms = EventTerms.of(event)
        if known is None:
            self.state.events[event.event_id] = EventRow(terms)
            return terms
        previous, known.terms = known.terms, terms
        return previous

    async def terms(self, event_id: uuid.UUID, *, for_update: bool = False) -> EventTerms | None:
        del for_update  # one transaction at a time (the store): every row is as good as locked
        row = self.state.events.get(event_id)
        return row.terms if row else None

    async def seat_state(self, event_id: uuid.UUID, *, for_update: bool = True) -> SeatState | None:
        del for_update  # one transaction at a time (the store)
        row = self.state.events.get(event_id)
        return SeatState(row.terms, row.confirmed, row.waitlisted) if row else None

    async def open_events(self, now: datetime) -> list[SeatState]:
        open_ = [
            SeatState(row.terms, row.confirmed, row.waitlisted)
            for row in self.state.events.values()
            if row.terms.status in ("published", "live") and row.terms.ends_at > now
        ]
        return sorted(open_, key=lambda seats: seats.terms.starts_at)[:100]

    async def events_by_start(
        self, limit: int = 200, only: Collection[uuid.UUID] | None = None
    ) -> list[EventTerms]:
        known = [
            row.terms
            for row in self.state.events.values()
            if row.terms.status != "draft" and (only is None or row.terms.id in only)
        ]
        now = datetime.now(UTC)
        coming = sorted((t for t in known if t.ends_at >= now), key=lambda t: t.starts_at)
        past = sorted((t for t in known if t.ends_at < now), key=lambda t: t.starts_at)
        return (coming + past[::-1])[:limit]

    # -- registrations -----------------------------------------------------------------------

    async def add(self, registration: Registration) -> Registration:
        self.state.last_queue_number += 1
        stored = dataclasses.replace(registration, queue_number=self.state.last_queue_number)
        confirmed = registration.status == "confirmed"
        self.state.registrations[registration.id] = RegistrationRow(
            stored, confirmed_at=_now() if confirmed else None
        )
        self._count(registration.event_id, registration.status, +1)
        return stored

    async def registration(
        self, registration_id: uuid.UUID, *, for_update: bool = False
    ) -> Registration | None:
        del for_update
        row = self.state.registrations.get(registration_id)
        return row.registration if row else None

    async def mark_cancelled(self, registration: Registration, reason: str) -> None:
        row = self.state.registrations.get(registration.id)
        if row is None or row.registration.status != registration.status:
            return
        self._cancel(row, reason)
        self._count(registration.event_id, registration.status, -1)

    async def cancel_all_active(self, event_id: uuid.UUID, reason: str) -> list[Registration]:
        before = [
            row.registration
            for row in self._rows_of(event_id)
            if row.registration.status != "cancelled"
        ]
        for registration in before:
            self._cancel(self.state.registrations[registration.id], reason)
        event = self.state.events.get(event_id)
        if event is not None:
            event.confirmed = event.waitlisted = 0
        return before

    async def promote_first_waitlisted(self, event_id: uuid.UUID, count: int) -> list[Registration]:
        waiting = [r for r in self._rows_of(event_id) if r.registration.status == "waitlisted"]
        promoted = []
        for row in waiting[:count]:
            row.registration = dataclasses.replace(row.registration, status="confirmed")
            row.confirmed_at = _now()
            promoted.append(row.registration)
        event = self.state.events.get(event_id)
        if event is not None:
            event.confirmed += len(promoted)
            event.waitlisted -= len(promoted)
        return promoted

    async def mark_checked_in(
        self, registration_id: uuid.UUID, organiser: str
    ) -> Registration | None:
        row = self.state.registrations.get(registration_id)
        if row is None or row.registration.checked_in_at is not None:
            return None
        row.registration = dataclasses.replace(row.registration, checked_in_at=_now())
        row.checked_in_by = organiser
        return row.registration

    async def undo_check_in(self, registration_id: uuid.UUID) -> Registration | None:
        row = self.state.registrations.get(registration_id)
        if row is None or row.registration.checked_in_at is None:
            return None
        row.registration = dataclasses.replace(row.registration, checked_in_at=None)
        row.checked_in_by = None
        return row.registration

    async def active_registration(self, event_id: uuid.UUID, email: str) -> Registration | None:
        return next(
            (
                row.registration
                for row in self._rows_of(event_id)
                if row.registration.status != "cancelled"
                and row.registration.applicant.email.lower() == email
            ),
            None,
        )

    async def promote_one(self, registration_id: uuid.UUID) -> Registration | None:
        row = self.state.registrations.get(registration_id)
        if row is None or row.registration.status != "waitlisted":
            return None
        row.registration = dataclasses.replace(row.registration, status="confirmed")
        row.confirmed_at = _now()
        self._count(row.registration.event_id, "waitlisted", -1)
        self._count(row.registration.event_id, "confirmed", +1)
        return row.registration

    async def correct(
        self, registration_id: uuid.UUID, name: str, organisation: str, role: str
    ) -> Registration | None:
        row = self.state.registrations.get(registration_id)
        if row is None or row.registration.erased:
            return None
        before = row.registration.applicant
        applicant = dataclasses.replace(
            before,
            name=name,
            organisation=organisation,
            role=role,
            school_code=before.school_code if organisation == before.organisation else None,
        )
        row.registration = dataclasses.replace(row.registration, applicant=applicant)
        return row.registration

    async def waitlist_position(self, registration: Registration) -> int:
        return sum(
            1
            for row in self._rows_of(registration.event_id)
            if row.registration.status == "waitlisted"
            and row.registration.queue_number <= registration.queue_number
        )

    async def status_counts(self, event_id: uuid.UUID) -> dict[str, int]:
        registrations = [row.registration for row in self._rows_of(event_id)]
        counts = {
            status: sum(1 for r in registrations if r.status == status)
            for status in ("confirmed", "waitlisted", "cancelled")
        }
        counts["checked_in"] = sum(1 for r in registrations if r.checked_in_at is not None)
        return counts

    async def attendees(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        region_code: str | None = None,
        role: str | None = None,
    ) -> list[Registration]:
        return [
            r
            for r in (row.registration for row in self._rows_of(event_id))
            if (status is None or r.status == status)
            and (region_code is None or r.applicant.region_code == region_code)
            and (role is None or r.applicant.role == role)
        ]

    async def record_booking(self, group_id: uuid.UUID, booker_id: uuid.UUID) -> None:
        self.state.bookings.add((group_id, booker_id))

    async def booked_colleagues(self, booker_id: uuid.UUID) -> list[Registration]:
        groups = {group for group, booker in self.state.bookings if booker == booker_id}
        return [
            row.registration
            for row in self._in_queue_order(self.state.registrations.values())
            if row.registration.group_id in groups and row.registration.id != booker_id
        ]

    # -- attendance (from analytics) ----------------------------------------------------------

    async def attendance(self, registration_id: uuid.UUID) -> Attendance | None:
        return self.state.attendance.get(registration_id)

    async def save_attendance(self, attendance: Attendance) -> None:
        self.state.attendance[attendance.registration_id] = attendance

    # -- privacy -----------------------------------------------------------------------------

    async def data_keys(self, registrations: Sequence[Registration]) -> dict[uuid.UUID, bytes]:
        for registration in registrations:
            if not registration.erased and registration.id not in self.state.keys:
                self.state.keys[registration.id] = new_key()
        return {r.id: self.state.keys[r.id] for r in registrations if r.id in self.state.keys}

    async def person_records(self, email: str) -> list[dict[str, Any]]:
        rows = sorted(self._rows_of_address(email), key=lambda row: row.registration.created_at)
        return [self._record(row) for row in rows]

    async def erase_person(self, email: str) -> list[uuid.UUID]:
        rows = list(self._rows_of_address(email))
        for row in rows:
            self._remove_personal_fields(row)
        return [row.registration.id for row in rows]

    async def anonymise_ended_before(
        self, ended_before: datetime, limit: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        expired = [
            row
            for row in self.state.registrations.values()
            if not row.registration.erased
            and self.state.events[row.registration.event_id].terms.ends_at < ended_before
        ]
        by_event: dict[uuid.UUID, list[uuid.UUID]] = {}
        for row in sorted(expired, key=lambda row: row.registration.event_id)[:limit]:
            self._remove_personal_fields(row)
            row.cancel_reason = None
            by_event.setdefault(row.registration.event_id, []).append(row.registration.id)
        return by_event

    def _remove_personal_fields(self, row: RegistrationRow) -> None:
        registration = row.registration
        row.registration = dataclasses.replace(
            registration,
            applicant=Applicant(
                name="",
                email="",
                organisation="",
                role=registration.applicant.role,
                region_code=registration.applicant.region_code,
                profiles=registration.applicant.profiles,
                newsletter=False,
                school_code=registration.applicant.school_code,
            ),
            erased=True,
        )
        self.state.keys.pop(registration.id, None)

    # -- messages ----------------------------------------------------------------------------

    async def add_messages(self, messages: Sequence[Message]) -> None:
        self.state.outbox.extend(messages)

    async def record(self, note: AuditNote) -> None:
        self.state.audit.append(note)

    # -- helpers -----------------------------------------------------------------------------

    def _count(self, event_id: uuid.UUID, status: str, step: int) -> None:
        event = self.state.events.get(event_id)
        if event is None:
            return
        if status == "confirmed":
            event.confirmed += step
        elif status == "waitlisted":
            event.waitlisted += step

    @staticmethod
    def _cancel(row: RegistrationRow, reason: str) -> None:
        row.registration = dataclasses.replace(row.registration, status="cancelled")
        row.cancelled_at = _now()
        row.cancel_reason = reason

    @staticmethod
    def _in_queue_order(rows: Iterable[RegistrationRow]) -> list[RegistrationRow]:
        return sorted(rows, key=lambda row: row.registration.queue_number)

    def _rows_of(self, event_id: uuid.UUID) -> list[RegistrationRow]:
        return self._in_queue_order(
            row
            for row in self.state.registrations.values()
            if row.registration.event_id == event_id
        )

    def _rows_of_address(self, email: str) -> Iterable[RegistrationRow]:
        return (
            row
            for row in self.state.registrations.values()
            if not row.registration.erased and row.registration.applicant.email.lower() == email
        )

    def _record(self, row: RegistrationRow) -> dict[str, Any]:
        registration, applicant = row.registration, row.registration.applicant
        terms = self.state.events[registration.event_id].terms
        return {
            "id": registration.id,
            "event_id": registration.event_id,
            "event_title": terms.title,
            "event_starts_at": terms.starts_at,
            "status": registration.status,
            "name": applicant.name,
            "email": applicant.email,
            "organisation": applicant.organisation,
            "school_code": applicant.school_code,
            "role": applicant.role,
            "region_code": applicant.region_code,
            "profiles": list(applicant.profiles),
            "newsletter": applicant.newsletter,
            "viewer_id": registration.viewer_id,
            "group_id": registration.group_id,
            "created_at": registration.created_at,
            "confirmed_at": row.confirmed_at,
            "cancelled_at": row.cancelled_at,
            "cancel_reason": row.cancel_reason,
            "checked_in_at": registration.checked_in_at,
            "privacy_version": None,
            "consented_at": None,
        }
