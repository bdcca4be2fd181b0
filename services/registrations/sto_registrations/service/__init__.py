"""Use cases of the registrations service; the only place that opens a transaction.

A sign-up (``sign_ups``, with its group-commit engine in ``batching``), a cancellation with
its promotion from the waiting list, a check-in, an erasure, and every message they cause
commit together or not at all. ``RegistrationsService`` is what the HTTP and Kafka faces call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from sto_registrations import domain, repository
from sto_registrations.domain import (
    Applicant,
    CheckInRefused,
    EventTerms,
    EventUnknown,
    Registration,
    RegistrationUnknown,
)
from sto_registrations.service.sign_ups import SignUpAnswer, SignUpResult, SignUps
from sto_registrations.service.views import join_url, registration_view
from stolive_shared import links
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationPromoted,
    RegistrationStatus,
    RegistrationView,
)
from stolive_shared.links import PersonalLinks
from stolive_shared.messaging import outbox

__all__ = [
    "CheckInRefused",
    "EventUnknown",
    "RegistrationUnknown",
    "RegistrationsService",
    "SignUpAnswer",
    "SignUpResult",
]


@dataclass
class RegistrationsService:
    pool: asyncpg.Pool
    schema: str
    links: PersonalLinks
    clock: Clock = utc_now
    max_in_flight: int = 4
    # A registration is told "you were already signed up" at most once per this interval.
    repeat_notice_interval: timedelta = timedelta(minutes=10)
    sign_ups: SignUps = field(init=False)

    def __post_init__(self) -> None:
        self.sign_ups = SignUps(
            self.pool,
            self.schema,
            self.links,
            clock=lambda: self.clock(),
            max_in_flight=self.max_in_flight,
            repeat_notice_interval=self.repeat_notice_interval,
        )

    async def close(self) -> None:
        await self.sign_ups.close()

    async def drain_follow_ups(self) -> None:
        await self.sign_ups.drain_follow_ups()

    # -- signing up (sign_ups) ---------------------------------------------------------------

    async def sign_up(self, event_id: uuid.UUID, applicant: Applicant) -> SignUpResult:
        return await self.sign_ups.sign_up(event_id, applicant)

    async def sign_up_group(
        self, event_id: uuid.UUID, applicants: list[Applicant]
    ) -> list[SignUpAnswer]:
        """The first applicant with colleagues of the same school, each their own registration."""
        return await self.sign_ups.sign_up_group(event_id, applicants)

    # -- personal links ----------------------------------------------------------------------

    def manage_token(self, registration_id: uuid.UUID) -> str:
        return self.links.manage_token(registration_id)

    def manage_url(self, registration_id: uuid.UUID) -> str:
        return self.links.manage(registration_id)

    def registration_for_token(self, token: str) -> uuid.UUID:
        registration_id = self.links.subject(links.MANAGE, token)
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    def check_in_url(self, registration_id: uuid.UUID) -> str:
        """What the QR code on the confirmation holds: an organiser opens it on a phone."""
        return self.links.check_in(registration_id)

    def registration_for_check_in_token(self, token: str) -> uuid.UUID:
        registration_id = self.links.subject(links.CHECK_IN, token)
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    def join_url(self, registration: Registration, terms: EventTerms) -> str | None:
        return join_url(self.links, registration, terms)

    # -- cancelling and promoting ----------------------------------------------------------

    async def cancel(self, registration_id: uuid.UUID, reason: str = "") -> Registration:
        """Cancel (or leave the waiting list); a freed seat goes to the first on the waiting
        list in the same commit."""
        async with self.pool.acquire() as conn, conn.transaction():
            registration = await repository.get_registration(conn, registration_id, for_update=True)
            if registration is None:
                raise RegistrationUnknown()
            if registration.status == "cancelled":
                return registration
            terms = await repository.get_terms(conn, registration.event_id, for_update=True)
            assert terms is not None
            await repository.mark_cancelled(conn, registration, reason)
            messages: list[Message] = [
                RegistrationCancelled.create(
                    registration=self._view(registration, terms, status="cancelled"),
                    previous_status=registration.status,
                    reason=reason,
                )
            ]
            if registration.status == "confirmed":
                messages += await self._promote(conn, terms.id)
            await outbox.enqueue_many(conn, messages, schema=self.schema)
        return registration

    async def _promote(self, conn: asyncpg.Connection, event_id: uuid.UUID) -> list[Message]:
        """Give free seats to the waiting list, first come first served: as many as the seat
        rule grants on the event's locked row (``domain.promotions``)."""
        seats = await repository.seat_state(conn, event_id)
        assert seats is not None
        count = domain.promotions(seats)
        if count == 0:
            return []
        return [
            RegistrationPromoted.create(registration=self._view(promoted, seats.terms))
            for promoted in await repository.promote_first_waitlisted(conn, event_id, count)
        ]

    async def apply_event(self, conn: asyncpg.Connection, event: EventSnapshot) -> None:
        """Follow the events topic (inside the consumer's transaction).

        Cancelled: every registration is cancelled with that reason. Capacity raised: the
        waiting list moves up. Capacity lowered: nobody confirmed loses a seat; new sign-ups
        wait until enough people have cancelled.
        """
        previous = await repository.store_event(conn, event)
        if previous is None:
            return  # an older or repeated revision
        terms = await repository.get_terms(conn, event.event_id)
        assert terms is not None
        messages: list[Message] = []
        if event.status == "cancelled":
            for registration in await repository.cancel_all_active(
                conn, event.event_id, "event_cancelled"
            ):
                messages.append(
                    RegistrationCancelled.create(
                        registration=self._view(registration, terms, status="cancelled"),
                        previous_status=registration.status,
                        reason="event_cancelled",
                    )
                )
        elif event.status in ("published", "live"):
            messages += await self._promote(conn, terms.id)
        await outbox.enqueue_many(conn, messages, schema=self.schema)

    # -- checking in -----------------------------------------------------------------------

    async def check_in(self, registration_id: uuid.UUID, organiser: str) -> Registration:
        """Check a confirmed person in at a physical meeting; a second check-in changes nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            registration = await repository.get_registration(conn, registration_id, for_update=True)
            if registration is None:
                raise RegistrationUnknown()
            terms = await repository.get_terms(conn, registration.event_id)
            assert terms is not None
            refusal = domain.check_in_refusal(terms, registration.status)
            if refusal is not None:
                raise CheckInRefused(refusal)
            checked = await repository.mark_checked_in(conn, registration_id, organiser)
            if checked is None:
                return registration
            assert checked.checked_in_at is not None
            await outbox.enqueue(
                conn,
                RegistrationCheckedIn.create(
                    registration=self._view(checked, terms), checked_in_at=checked.checked_in_at
                ),
                schema=self.schema,
            )
        return checked

    # -- privacy ---------------------------------------------------------------------------

    async def person_export(self, email: str) -> dict[str, Any]:
        """Everything this service holds about an email address."""
        address = domain.normalise_email(email)
        async with self.pool.acquire() as conn:
            records = await repository.person_records(conn, address)
        return {"email": address, "exported_at": self.clock(), "registrations": records}

    async def erase_person(self, email: str) -> list[uuid.UUID]:
        """Remove the person's details, keep the counts, and tell every service to erase too.

        ``person.erased`` is published even when nothing is held here: another service (the
        newsletter list, say) may hold the address.
        """
        address = domain.normalise_email(email)
        async with self.pool.acquire() as conn, conn.transaction():
            erased = await repository.erase_person(conn, address)
            await outbox.enqueue(
                conn,
                PersonErased.create(
                    email_sha256=domain.email_digest(address),
                    registration_ids=tuple(erased),
                    erased_at=self.clock(),
                ),
                schema=self.schema,
            )
        return erased

    # -- reading ---------------------------------------------------------------------------

    async def get(self, registration_id: uuid.UUID) -> tuple[Registration, EventTerms]:
        async with self.pool.acquire() as conn:
            registration = await repository.get_registration(conn, registration_id)
            if registration is None:
                raise RegistrationUnknown()
            terms = await repository.get_terms(conn, registration.event_id)
        assert terms is not None
        return registration, terms

    async def booked_colleagues(self, booker_id: uuid.UUID) -> list[Registration]:
        async with self.pool.acquire() as conn:
            return await repository.booked_colleagues(conn, booker_id)

    async def cancel_colleague(self, booker_id: uuid.UUID, colleague_id: uuid.UUID) -> Registration:
        """A booker cancels a colleague they signed up (and only those)."""
        if colleague_id not in {c.id for c in await self.booked_colleagues(booker_id)}:
            raise RegistrationUnknown()
        before, _ = await self.get(colleague_id)
        reason = "left_waitlist" if before.status == "waitlisted" else "cancelled_by_booker"
        return await self.cancel(colleague_id, reason)

    async def waitlist_position(self, registration: Registration) -> int:
        async with self.pool.acquire() as conn:
            return await repository.waitlist_position(conn, registration)

    async def event_terms(self, event_id: uuid.UUID) -> EventTerms:
        async with self.pool.acquire() as conn:
            terms = await repository.get_terms(conn, event_id)
        if terms is None or terms.status == "draft":
            raise EventUnknown()
        return terms

    async def open_events(self) -> list[EventTerms]:
        async with self.pool.acquire() as conn:
            return await repository.open_events(conn, self.clock())

    async def all_events(self) -> list[EventTerms]:
        async with self.pool.acquire() as conn:
            return await repository.events_by_start(conn)

    async def counts(self, event_id: uuid.UUID) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            return await repository.status_counts(conn, event_id)

    async def attendees(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        region_code: str | None = None,
        role: str | None = None,
    ) -> list[Registration]:
        async with self.pool.acquire() as conn:
            return await repository.attendees(
                conn, event_id, status=status, region_code=region_code, role=role
            )

    def _view(
        self,
        registration: Registration,
        terms: EventTerms,
        status: RegistrationStatus | None = None,
    ) -> RegistrationView:
        return registration_view(self.links, registration, terms, status)
