"""What happens to a registration after its sign-up: cancelling (and the promotion from the
waiting list it may bring), following the event's changes, checking in, the privacy requests,
and the reads the pages need. Each use case runs in one transaction of its ``Store``, so the
change and the messages it causes commit together; they hold no connection themselves, and
run as well on the in-memory repository (the unit tests) as on PostgreSQL.

Lock order: a transaction that locks an event's row and some of its registrations takes the
event's row first (``locked_registration``), as following the event's changes does; the other
order deadlocks against it (``tests/integration/test_registrations_lock_order.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from sto_registrations import domain
from sto_registrations.attendance import Attendance, merged
from sto_registrations.domain import (
    AuditNote,
    CheckInRefused,
    EventTerms,
    EventUnknown,
    Registration,
    RegistrationUnknown,
    registration_subject,
)
from sto_registrations.repository import RegistrationsRepository
from sto_registrations.service.views import registration_view
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.analytics import AttendanceRecorded
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationExportRequested,
    RegistrationPromoted,
    RegistrationsAnonymised,
    RegistrationStatus,
    RegistrationView,
)
from stolive_shared.links import PersonalLinks
from stolive_shared.organisers.roles import Organiser
from stolive_shared.privacy import person_key
from stolive_shared.store import Store


async def locked_registration(
    registrations: RegistrationsRepository, registration_id: uuid.UUID
) -> Registration | None:
    """The registration, locked till commit for a change, after its event's row (the lock
    order above): read once to learn the event, then read again under the lock."""
    known = await registrations.registration(registration_id)
    if known is None:
        return None
    await registrations.terms(known.event_id, for_update=True)
    return await registrations.registration(registration_id, for_update=True)


class RegistrationLifecycle:
    def __init__(
        self,
        store: Store[RegistrationsRepository],
        links: PersonalLinks,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.links = links
        self.clock = clock

    # -- cancelling and promoting ----------------------------------------------------------

    async def cancel(self, registration_id: uuid.UUID, reason: str = "") -> Registration:
        """Cancel (or leave the waiting list); a freed seat goes to the first on the waiting
        list in the same commit."""
        async with self.store.transaction() as registrations:
            registration = await locked_registration(registrations, registration_id)
            if registration is None:
                raise RegistrationUnknown()
            if registration.status == "cancelled":
                return registration
            await self._cancelled(registrations, registration, reason)
        return registration

    async def _cancelled(
        self, registrations: RegistrationsRepository, registration: Registration, reason: str
    ) -> None:
        """Cancel an active registration with its messages, and promote into a freed seat."""
        terms = await registrations.terms(registration.event_id, for_update=True)
        assert terms is not None
        await registrations.mark_cancelled(registration, reason)
        [view] = await self._views(registrations, [registration], terms, "cancelled")
        messages: list[Message] = [
            RegistrationCancelled.create(
                registration=view,
                previous_status=registration.status,
                reason=reason,
            )
        ]
        if registration.status == "confirmed":
            messages += await self._promote(registrations, terms.id)
        await registrations.add_messages(messages)

    async def _promote(
        self, registrations: RegistrationsRepository, event_id: uuid.UUID
    ) -> list[Message]:
        """Give free seats to the waiting list, first come first served: as many as the seat
        rule grants on the event's locked row (``domain.promotions``)."""
        seats = await registrations.seat_state(event_id)
        assert seats is not None
        count = domain.promotions(seats)
        if count == 0:
            return []
        promoted = await registrations.promote_first_waitlisted(event_id, count)
        return [
            RegistrationPromoted.create(registration=view)
            for view in await self._views(registrations, promoted, seats.terms)
        ]

    async def apply_event(
        self, registrations: RegistrationsRepository, event: EventSnapshot
    ) -> None:
        """Follow the events topic (inside the consumer's transaction, ``registrations``).

        Cancelled: every registration is cancelled with that reason. Capacity raised: the
        waiting list moves up. Capacity lowered: nobody confirmed loses a seat; new sign-ups
        wait until enough people have cancelled.
        """
        previous = await registrations.store_event(event)
        if previous is None:
            return  # an older or repeated revision
        terms = await registrations.terms(event.event_id)
        assert terms is not None
        messages: list[Message] = []
        if event.status == "cancelled":
            cancelled = await registrations.cancel_all_active(event.event_id, "event_cancelled")
            views = await self._views(registrations, cancelled, terms, "cancelled")
            messages += [
                RegistrationCancelled.create(
                    registration=view,
                    previous_status=registration.status,
                    reason="event_cancelled",
                )
                for registration, view in zip(cancelled, views, strict=True)
            ]
        elif event.status in ("published", "live"):
            messages += await self._promote(registrations, terms.id)
        await registrations.add_messages(messages)

    async def apply_attendance(
        self, registrations: RegistrationsRepository, message: AttendanceRecorded
    ) -> None:
        """Follow analytics' ``attendance.recorded`` (inside the consumer's transaction): what
        the manage page says after the event (``attendance.merged``)."""
        news = Attendance(
            registration_id=message.registration_id,
            attended_as=message.attended_as,
            certificate=message.certificate,
            minutes_live=message.minutes_live,
            minutes_replay=message.minutes_replay,
        )
        known = await registrations.attendance(message.registration_id)
        await registrations.save_attendance(merged(known, news))

    async def certificate_url(self, registration_id: uuid.UUID) -> str | None:
        """The link to the registrant's certificate once analytics issued it."""
        async with self.store.reading() as registrations:
            attendance = await registrations.attendance(registration_id)
        if attendance is None or not attendance.certificate:
            return None
        return self.links.certificate(registration_id)

    # -- checking in -----------------------------------------------------------------------

    async def check_in(
        self, registration_id: uuid.UUID, organiser: Organiser | str, *, via: str = ""
    ) -> Registration:
        """Check a confirmed person in at a physical meeting; a second check-in changes nothing.

        ``organiser``: the signed-in organiser (their address is kept with the check-in, and
        the check-in audited, ``via`` the list, the QR code or the API), or a plain name
        where no account is involved."""
        async with self.store.transaction() as registrations:
            registration = await registrations.registration(registration_id, for_update=True)
            if registration is None:
                raise RegistrationUnknown()
            terms = await registrations.terms(registration.event_id)
            assert terms is not None
            refusal = domain.check_in_refusal(terms, registration.status)
            if refusal is not None:
                raise CheckInRefused(refusal)
            by = organiser.email if isinstance(organiser, Organiser) else organiser
            checked = await registrations.mark_checked_in(registration_id, by)
            if checked is None:
                return registration
            assert checked.checked_in_at is not None
            [view] = await self._views(registrations, [checked], terms)
            await registrations.add_messages(
                [
                    RegistrationCheckedIn.create(
                        registration=view, checked_in_at=checked.checked_in_at
                    )
                ]
            )
            if isinstance(organiser, Organiser):
                await registrations.record(
                    AuditNote(
                        organiser,
                        "check_in",
                        checked.event_id,
                        registration_subject(checked.id),
                        {"via": via} if via else {},
                    )
                )
        return checked

    # -- privacy ---------------------------------------------------------------------------

    async def request_export(self, registration_id: uuid.UUID) -> None:
        """The person asked for their data: notifications mails the link to the address
        itself (``registration.export_requested``), whoever pressed the button."""
        async with self.store.transaction() as registrations:
            registration = await registrations.registration(registration_id)
            if registration is None or registration.erased:
                raise RegistrationUnknown()
            terms = await registrations.terms(registration.event_id)
            assert terms is not None
            [view] = await self._views(registrations, [registration], terms)
            await registrations.add_messages(
                [RegistrationExportRequested.create(registration=view)]
            )

    async def person_export(self, email: str) -> dict[str, Any]:
        """Everything this service holds about an email address."""
        address = domain.normalise_email(email)
        async with self.store.reading() as registrations:
            records = await registrations.person_records(address)
        return {"email": address, "exported_at": self.clock(), "registrations": records}

    async def erase_person(self, email: str, *, by: Organiser | None = None) -> list[uuid.UUID]:
        """Remove the person's details, keep the counts, and tell every service to erase too.

        ``person.erased`` is published even when nothing is held here: another service (the
        newsletter list, say) may hold the address. ``by``: the organiser who did it for the
        person (audited, the person named by the keyed hash of the address).
        """
        address = domain.normalise_email(email)
        key = person_key(self.links.secret, address)
        async with self.store.transaction() as registrations:
            erased = await registrations.erase_person(address)
            await registrations.add_messages(
                [
                    PersonErased.create(
                        person_key=key,
                        registration_ids=tuple(erased),
                        erased_at=self.clock(),
                    )
                ]
            )
            if by is not None:
                await registrations.record(
                    AuditNote(by, "erase", subject=f"person:{key}", detail={"erased": len(erased)})
                )
        return erased

    async def anonymise_expired(self, retention: timedelta, limit: int) -> int:
        """One batch of registrations whose event ended more than ``retention`` ago loses
        its personal fields; each event's ids go out in one ``registrations.anonymised``,
        committed with the change, so every service drops its copies exactly once."""
        now = self.clock()
        async with self.store.transaction() as registrations:
            expired = await registrations.anonymise_ended_before(now - retention, limit)
            await registrations.add_messages(
                [
                    RegistrationsAnonymised.create(
                        event_id=event_id, registration_ids=tuple(ids), anonymised_at=now
                    )
                    for event_id, ids in expired.items()
                ]
            )
        return sum(len(ids) for ids in expired.values())

    # -- reading ---------------------------------------------------------------------------

    async def get(self, registration_id: uuid.UUID) -> tuple[Registration, EventTerms]:
        async with self.store.reading() as registrations:
            registration = await registrations.registration(registration_id)
            if registration is None:
                raise RegistrationUnknown()
            terms = await registrations.terms(registration.event_id)
        assert terms is not None
        return registration, terms

    async def booked_colleagues(self, booker_id: uuid.UUID) -> list[Registration]:
        async with self.store.reading() as registrations:
            return await registrations.booked_colleagues(booker_id)

    async def cancel_colleague(self, booker_id: uuid.UUID, colleague_id: uuid.UUID) -> Registration:
        """A booker cancels a colleague they signed up (and only those)."""
        if colleague_id not in {c.id for c in await self.booked_colleagues(booker_id)}:
            raise RegistrationUnknown()
        before, _ = await self.get(colleague_id)
        reason = "left_waitlist" if before.status == "waitlisted" else "cancelled_by_booker"
        return await self.cancel(colleague_id, reason)

    async def waitlist_position(self, registration: Registration) -> int:
        async with self.store.reading() as registrations:
            return await registrations.waitlist_position(registration)

    async def event_terms(self, event_id: uuid.UUID) -> EventTerms:
        async with self.store.reading() as registrations:
            terms = await registrations.terms(event_id)
        if terms is None or terms.status == "draft":
            raise EventUnknown()
        return terms

    async def agenda(self) -> list[tuple[EventTerms, domain.Availability]]:
        """The events open now, soonest first, each with what the agenda says about places."""
        now = self.clock()
        async with self.store.reading() as registrations:
            events = await registrations.open_events(now)
        return [(seats.terms, domain.availability(seats, now)) for seats in events]

    async def event_with_availability(
        self, event_id: uuid.UUID
    ) -> tuple[EventTerms, domain.Availability]:
        """An event's terms and what its sign-up form says about places (read without
        locking the event: a rush of readers does not queue behind the sign-ups)."""
        async with self.store.reading() as registrations:
            seats = await registrations.seat_state(event_id, for_update=False)
        if seats is None or seats.terms.status == "draft":
            raise EventUnknown()
        return seats.terms, domain.availability(seats, self.clock())

    async def all_events(self, only: Collection[uuid.UUID] | None = None) -> list[EventTerms]:
        """Every event but drafts, latest start first (``only``: of these ids)."""
        async with self.store.reading() as registrations:
            return await registrations.events_by_start(only=only)

    async def counts(self, event_id: uuid.UUID) -> dict[str, int]:
        async with self.store.reading() as registrations:
            return await registrations.status_counts(event_id)

    async def attendees(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        region_code: str | None = None,
        role: str | None = None,
    ) -> list[Registration]:
        async with self.store.reading() as registrations:
            return await registrations.attendees(
                event_id, status=status, region_code=region_code, role=role
            )

    @staticmethod
    async def _views(
        registrations: RegistrationsRepository,
        changed: list[Registration],
        terms: EventTerms,
        status: RegistrationStatus | None = None,
    ) -> list[RegistrationView]:
        """The registrations as their messages tell them, contacts sealed with their keys."""
        keys = await registrations.data_keys(changed)
        return [registration_view(r, terms, keys.get(r.id), status) for r in changed]
