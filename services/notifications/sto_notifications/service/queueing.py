"""Queueing an e-mail: rendered now, stored under its unique key (a second time is a no-op),
with the calendar object whose SEQUENCE is one above the last one this person got, and the
sender woken. Also the e-mails about an event a reaction sends, built from the stored rows.

One builder for every calendar object: the confirmation, a reschedule, an updated invitation
and a cancellation all come from ``EmailQueue.queue``, with the registration's one UID and
the next SEQUENCE."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from sto_notifications import domain, repository
from sto_notifications.adapters.calendar import Invitation, invitation_ics
from sto_notifications.adapters.rendering import EmailRenderer
from sto_notifications.domain import CalendarMethod, EmailRequest, Reaction
from sto_notifications.repository import EventRow, RegistrationRow
from sto_notifications.service.wakeups import EMAIL_QUEUED, notify
from stolive_shared.clock import Clock
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.notifications import EmailKind
from stolive_shared.telemetry import current_traceparent

Calendar = tuple[RegistrationRow, EventRow, CalendarMethod]


@dataclass
class EmailQueue:
    mail_from: str
    person_key: Callable[[str], str]
    clock: Clock
    renderer: EmailRenderer

    async def queue(
        self, conn: asyncpg.Connection, request: EmailRequest, *, calendar: Calendar | None = None
    ) -> uuid.UUID | None:
        """Queue an email (with a calendar object whose SEQUENCE is one above the last)."""
        ics = method = None
        sequence = 0
        if calendar is not None:
            registration, event, method = calendar
            sequence = registration.ics_sequence + 1
            ics = invitation_ics(
                Invitation(
                    registration_id=registration.registration_id,
                    sequence=sequence,
                    method=method,
                    title=event.title,
                    starts_at=event.starts_at,
                    ends_at=event.ends_at,
                    attendee_name=domain.display_name(registration.name),
                    attendee_email=registration.email,
                    organiser_email=self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip(),
                    url=registration.manage_url,
                    location=event.venue,
                    description=event.description,
                ),
                stamp=self.clock(),
            )
        rendered = self.renderer.render(request.kind, request.context)
        email_id = await repository.queue_email(
            conn,
            request,
            rendered,
            self.person_key(request.recipient),
            ics=ics,
            ics_method=method,
            at=self.clock(),
            traceparent=current_traceparent(),
        )
        if email_id is not None:
            if calendar is not None:
                await repository.set_ics_sequence(conn, calendar[0].registration_id, sequence)
            await notify(conn, EMAIL_QUEUED)
        return email_id


def event_row(snapshot: EventSnapshot) -> EventRow:
    """What this service keeps of an event message's snapshot."""
    return EventRow(
        event_id=snapshot.event_id,
        revision=snapshot.revision,
        status=snapshot.status,
        title=snapshot.title,
        starts_at=snapshot.starts_at,
        ends_at=snapshot.ends_at,
        venue=snapshot.venue,
        replay_url=snapshot.replay_url,
        reminder_offsets_hours=snapshot.reminder_offsets_hours,
        description=snapshot.description,
    )


def calendar_of(
    reaction: Reaction, registration: RegistrationRow, event: EventRow
) -> Calendar | None:
    """The calendar object a reaction sends with its e-mail, if any."""
    if reaction.calendar is None:
        return None
    return registration, event, reaction.calendar


def event_email(
    kind: EmailKind, registration: RegistrationRow, event: EventRow, **extra: Any
) -> EmailRequest:
    """An e-mail about the event to one registered person; one per kind and event revision."""
    return EmailRequest(
        kind=kind,
        dedup_key=f"{kind}:{registration.registration_id}:{event.revision}",
        recipient=registration.email,
        event_id=event.event_id,
        registration_id=registration.registration_id,
        context={
            "name": domain.display_name(registration.name),
            "event_title": event.title,
            "starts_at": event.starts_at,
            "ends_at": event.ends_at,
            "manage_url": registration.manage_url,
            "venue": event.venue,
            **extra,
        },
    )


def rekey(request: EmailRequest, dedup_key: str) -> EmailRequest:
    """The same e-mail under another unique key (once per registration, not per revision)."""
    return EmailRequest(
        kind=request.kind,
        dedup_key=dedup_key,
        recipient=request.recipient,
        event_id=request.event_id,
        registration_id=request.registration_id,
        context=request.context,
    )


def cancellation_notice(
    registration: RegistrationRow, event: EventRow, has_calendar: bool, reason: str = ""
) -> EmailRequest:
    """ "Gaat niet door", once per registration (``domain.event_cancelled_key``): from the
    event's cancellation or from a registration message that arrives after it."""
    request = event_email(
        "event_cancelled", registration, event, has_calendar=has_calendar, reason=reason
    )
    return rekey(request, domain.event_cancelled_key(registration.registration_id))


def update_notice(
    registration: RegistrationRow,
    before: EventRow | None,
    event: EventRow,
    noticed: tuple[str, ...],
    join_url: str,
) -> EmailRequest:
    """The updated invitation with what changed: the old and the new place, the person's own
    watch link (``join_url``) when the stream changed, else a line per change. One per
    registration and event revision (``event_email``'s key)."""
    return event_email(
        "event_updated",
        registration,
        event,
        has_calendar=True,
        changes=list(noticed),
        previous_venue=before.venue if before else None,
        previous_title=before.title if before and before.title != event.title else None,
        join_url=join_url,
    )
