"""The registrations repository on PostgreSQL: the port's methods over one connection (and
so inside whatever transaction it is in), each running the SQL of ``events`` or
``registrations``."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from sto_registrations.attendance import Attendance
from sto_registrations.domain import AuditNote, EventTerms, Registration, SeatState
from sto_registrations.repository import attendance as attendance_sql
from sto_registrations.repository import events
from sto_registrations.repository import registrations as registrations_sql
from sto_registrations.repository.port import RegistrationsRepository
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.messaging import outbox
from stolive_shared.organisers.audit import AuditLog


class PostgresRegistrations(RegistrationsRepository):
    """``audit``: the service's audit log, written on this connection (none: a repository
    that records no organiser's actions, as the consumer's)."""

    def __init__(
        self, conn: asyncpg.Connection, schema: str, audit: AuditLog | None = None
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.audit = audit

    async def store_event(self, event: EventSnapshot) -> EventTerms | None:
        return await events.store_event(self.conn, event)

    async def terms(self, event_id: uuid.UUID, *, for_update: bool = False) -> EventTerms | None:
        return await events.get_terms(self.conn, event_id, for_update=for_update)

    async def seat_state(self, event_id: uuid.UUID, *, for_update: bool = True) -> SeatState | None:
        return await events.seat_state(self.conn, event_id, for_update=for_update)

    async def open_events(self, now: datetime) -> list[SeatState]:
        return await events.open_events(self.conn, now)

    async def events_by_start(
        self, limit: int = 200, only: Collection[uuid.UUID] | None = None
    ) -> list[EventTerms]:
        return await events.events_by_start(self.conn, limit, only)

    async def add(self, registration: Registration) -> Registration:
        return await registrations_sql.add_registration(self.conn, registration)

    async def registration(
        self, registration_id: uuid.UUID, *, for_update: bool = False
    ) -> Registration | None:
        return await registrations_sql.get_registration(
            self.conn, registration_id, for_update=for_update
        )

    async def mark_cancelled(self, registration: Registration, reason: str) -> None:
        await registrations_sql.mark_cancelled(self.conn, registration, reason)

    async def cancel_all_active(self, event_id: uuid.UUID, reason: str) -> list[Registration]:
        return await registrations_sql.cancel_all_active(self.conn, event_id, reason)

    async def promote_first_waitlisted(self, event_id: uuid.UUID, count: int) -> list[Registration]:
        return await registrations_sql.promote_first_waitlisted(self.conn, event_id, count)

    async def mark_checked_in(
        self, registration_id: uuid.UUID, organiser: str
    ) -> Registration | None:
        return await registrations_sql.mark_checked_in(self.conn, registration_id, organiser)

    async def undo_check_in(self, registration_id: uuid.UUID) -> Registration | None:
        return await registrations_sql.undo_check_in(self.conn, registration_id)

    async def active_registration(self, event_id: uuid.UUID, email: str) -> Registration | None:
        return await registrations_sql.active_registration(self.conn, event_id, email)

    async def promote_one(self, registration_id: uuid.UUID) -> Registration | None:
        return await registrations_sql.promote_one(self.conn, registration_id)

    async def correct(
        self, registration_id: uuid.UUID, name: str, organisation: str, role: str
    ) -> Registration | None:
        return await registrations_sql.correct(self.conn, registration_id, name, organisation, role)

    async def waitlist_position(self, registration: Registration) -> int:
        return await registrations_sql.waitlist_position(self.conn, registration)

    async def status_counts(self, event_id: uuid.UUID) -> dict[str, int]:
        return await registrations_sql.status_counts(self.conn, event_id)

    async def attendees(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        region_code: str | None = None,
        role: str | None = None,
    ) -> list[Registration]:
        return await registrations_sql.attendees(
            self.conn, event_id, status=status, region_code=region_code, role=role
        )

    async def record_booking(self, group_id: uuid.UUID, booker_id: uuid.UUID) -> None:
        await registrations_sql.record_booking(self.conn, group_id, booker_id)

    async def booked_colleagues(self, booker_id: uuid.UUID) -> list[Registration]:
        return await registrations_sql.booked_colleagues(self.conn, booker_id)

    async def attendance(self, registration_id: uuid.UUID) -> Attendance | None:
        return await attendance_sql.get_attendance(self.conn, registration_id)

    async def save_attendance(self, attendance: Attendance) -> None:
        await attendance_sql.save_attendance(self.conn, attendance)

    async def data_keys(self, registrations: Sequence[Registration]) -> dict[uuid.UUID, bytes]:
        return await registrations_sql.data_keys(self.conn, registrations)

    async def person_records(self, email: str) -> list[dict[str, Any]]:
        return await registrations_sql.person_records(self.conn, email)

    async def erase_person(self, email: str) -> list[uuid.UUID]:
        return await registrations_sql.erase_person(self.conn, email)

    async def anonymise_ended_before(
        self, ended_before: datetime, limit: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await registrations_sql.anonymise_ended_before(self.conn, ended_before, limit)

    async def add_messages(self, messages: Sequence[Message]) -> None:
        await outbox.enqueue_many(self.conn, list(messages), schema=self.schema)

    async def record(self, note: AuditNote) -> None:
        if self.audit is None:
            raise RuntimeError("this repository was made without the audit log")
        await self.audit.record(
            note.who,
            note.action,
            event_id=note.event_id,
            subject=note.subject,
            detail=note.detail,
            conn=self.conn,
        )
