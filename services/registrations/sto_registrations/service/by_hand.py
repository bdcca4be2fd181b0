"""What organisers do to registrations by hand, from an event's attendee page (issue #16):
add a person, cancel, move one from the waiting list into a seat, correct a name, school or
role, send the confirmation again, undo a check-in.

Each runs in one transaction with the messages it causes (the same ones a person's own
actions cause, so the e-mails and figures follow as they do then) and its audit row. Each
names the event as well as the registration: an organiser's scope is checked on the event,
and a registration of another event is unknown here.

A correction, a resent confirmation and an undone check-in have messages of their own
(``registration.corrected``, ``registration.confirmation_resent``,
``registration.check_in_undone``): the reminders use the corrected name, the person gets the
confirmation e-mail again, and the attendance figures drop a check-in taken back.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid

from sto_registrations import domain
from sto_registrations.domain import (
    ActionRefused,
    Applicant,
    AuditNote,
    EventTerms,
    EventUnknown,
    Registration,
    RegistrationUnknown,
    registration_subject,
)
from sto_registrations.repository import RegistrationsRepository
from sto_registrations.service.lifecycle import RegistrationLifecycle, locked_registration
from sto_registrations.service.sign_ups import normalised
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.registrations import (
    RegistrationCheckInUndone,
    RegistrationConfirmationResent,
    RegistrationConfirmed,
    RegistrationCorrected,
    RegistrationPromoted,
    RegistrationWaitlisted,
)
from stolive_shared.errors import DomainError
from stolive_shared.organisers.roles import Organiser

CANCELLED_BY_ORGANISER = "cancelled_by_organiser"


class EntryInvalid(DomainError):
    """What an organiser typed cannot be stored; ``problems`` says why per field."""

    status = 422
    message = "Controleer de ingevulde gegevens."


class ByHand(RegistrationLifecycle):
    async def registration_of_event(
        self, event_id: uuid.UUID, registration_id: uuid.UUID
    ) -> tuple[Registration, EventTerms]:
        """A registration of this event (RegistrationUnknown for one of another event)."""
        registration, terms = await self.get(registration_id)
        if registration.event_id != event_id:
            raise RegistrationUnknown()
        return registration, terms

    async def add_by_hand(
        self, event_id: uuid.UUID, applicant: Applicant, by: Organiser
    ) -> Registration:
        """A person an organiser signs up: a seat if one is free, else the waiting list, and
        the same confirmation (or waiting-list) e-mail as a sign-up brings."""
        applicant = normalised(applicant)
        problems = domain.entry_problems(applicant)
        if problems:
            raise EntryInvalid(problems=problems)
        now = self.clock()
        async with self.store.transaction() as registrations:
            seats = await registrations.seat_state(event_id)
            if seats is None or seats.terms.status == "draft":
                raise EventUnknown()
            if await registrations.active_registration(event_id, applicant.email) is not None:
                raise ActionRefused(
                    "Dit e-mailadres is al aangemeld voor dit evenement.", field="email"
                )
            status = domain.added_by_hand(seats, now)
            added = await registrations.add(
                Registration(
                    id=uuid.uuid4(),
                    event_id=event_id,
                    status=status,
                    applicant=applicant,
                    viewer_id="v_" + secrets.token_hex(12),
                    queue_number=0,
                    created_at=now,
                )
            )
            [view] = await self._views(registrations, [added], seats.terms)
            message: Message = (
                RegistrationConfirmed.create(registration=view)
                if status == "confirmed"
                else RegistrationWaitlisted.create(
                    registration=view, waitlist_position=seats.waitlisted + 1
                )
            )
            await registrations.add_messages([message])
            await self._audit(registrations, by, "registration_added", added, status=status)
        return added

    async def cancel_by_hand(
        self, event_id: uuid.UUID, registration_id: uuid.UUID, by: Organiser
    ) -> Registration:
        """Cancelled as the person's own cancellation is (their e-mail, a freed seat to the
        first on the waiting list)."""
        async with self.store.transaction() as registrations:
            registration = await self._of_event(registrations, event_id, registration_id)
            if registration.status == "cancelled":
                raise ActionRefused("Deze aanmelding is al geannuleerd.")
            await self._cancelled(registrations, registration, CANCELLED_BY_ORGANISER)
            await self._audit(
                registrations,
                by,
                "registration_cancelled",
                registration,
                previous_status=registration.status,
            )
        return dataclasses.replace(registration, status="cancelled")

    async def promote_by_hand(
        self,
        event_id: uuid.UUID,
        registration_id: uuid.UUID,
        by: Organiser,
        *,
        over_capacity: bool = False,
    ) -> Registration:
        """From the waiting list into a seat, with the e-mail a promotion brings: into a free
        seat, or above the capacity when the organiser says so (``domain.promotion_refusal``)."""
        async with self.store.transaction() as registrations:
            registration = await self._of_event(registrations, event_id, registration_id)
            seats = await registrations.seat_state(event_id)
            assert seats is not None
            refusal = domain.promotion_refusal(registration, seats, over_capacity=over_capacity)
            if refusal is not None:
                raise ActionRefused(refusal)
            promoted = await registrations.promote_one(registration.id)
            assert promoted is not None  # locked and waiting
            [view] = await self._views(registrations, [promoted], seats.terms)
            await registrations.add_messages([RegistrationPromoted.create(registration=view)])
            capacity = seats.terms.capacity
            above = capacity is not None and seats.confirmed >= capacity
            await self._audit(
                registrations,
                by,
                "registration_promoted",
                promoted,
                **({"over_capacity": True} if above else {}),
            )
        return promoted

    async def correct_by_hand(
        self,
        event_id: uuid.UUID,
        registration_id: uuid.UUID,
        by: Organiser,
        *,
        name: str,
        organisation: str,
        role: str,
    ) -> Registration:
        """A name, school or role typed wrong, corrected (an address is not: that is another
        person, so cancel and add them instead)."""
        name, organisation = name.strip(), organisation.strip()
        problems = domain.correction_problems(name, organisation, role)
        if problems:
            raise EntryInvalid(problems=problems)
        async with self.store.transaction() as registrations:
            registration = await self._of_event(registrations, event_id, registration_id)
            refusal = domain.change_refusal(registration)
            if refusal is not None:
                raise ActionRefused(refusal)
            corrected = await registrations.correct(registration.id, name, organisation, role)
            assert corrected is not None  # locked and not erased
            terms = await registrations.terms(event_id)
            assert terms is not None
            [view] = await self._views(registrations, [corrected], terms)
            await registrations.add_messages([RegistrationCorrected.create(registration=view)])
            before, after = registration.applicant, corrected.applicant
            changed = [
                field
                for field, old, new in (
                    ("name", before.name, after.name),
                    ("organisation", before.organisation, after.organisation),
                    ("role", before.role, after.role),
                )
                if old != new
            ]
            # The fields' names only: their values are personal data.
            await self._audit(
                registrations, by, "registration_corrected", corrected, fields=changed
            )
        return corrected

    async def resend_confirmation(
        self, event_id: uuid.UUID, registration_id: uuid.UUID, by: Organiser
    ) -> Registration:
        """The confirmation e-mail again (with the calendar invitation and the person's links),
        to the registration's own address, never to the organiser."""
        async with self.store.transaction() as registrations:
            registration = await self._of_event(registrations, event_id, registration_id)
            refusal = domain.change_refusal(registration)
            if refusal is not None:
                raise ActionRefused(refusal)
            terms = await registrations.terms(event_id)
            assert terms is not None
            [view] = await self._views(registrations, [registration], terms)
            resent = RegistrationConfirmationResent.create(registration=view)
            await registrations.add_messages([resent])
            await self._audit(registrations, by, "confirmation_resent", registration)
        return registration

    async def undo_check_in(
        self, event_id: uuid.UUID, registration_id: uuid.UUID, by: Organiser
    ) -> Registration:
        """A check-in made by mistake, taken back."""
        async with self.store.transaction() as registrations:
            registration = await self._of_event(registrations, event_id, registration_id)
            refusal = domain.undo_check_in_refusal(registration)
            if refusal is not None:
                raise ActionRefused(refusal)
            undone = await registrations.undo_check_in(registration.id)
            assert undone is not None  # locked and checked in
            terms = await registrations.terms(event_id)
            assert terms is not None
            [view] = await self._views(registrations, [undone], terms)
            await registrations.add_messages([RegistrationCheckInUndone.create(registration=view)])
            await self._audit(registrations, by, "check_in_undone", undone)
        return undone

    @staticmethod
    async def _of_event(
        registrations: RegistrationsRepository, event_id: uuid.UUID, registration_id: uuid.UUID
    ) -> Registration:
        """The registration, locked till commit (after its event's row), if it is one of
        this event."""
        registration = await locked_registration(registrations, registration_id)
        if registration is None or registration.event_id != event_id:
            raise RegistrationUnknown()
        return registration

    @staticmethod
    async def _audit(
        registrations: RegistrationsRepository,
        by: Organiser,
        action: str,
        registration: Registration,
        **detail: object,
    ) -> None:
        await registrations.record(
            AuditNote(
                by,
                action,
                registration.event_id,
                registration_subject(registration.id),
                detail,
            )
        )
