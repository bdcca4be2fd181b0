"""What the notifications service does when a message arrives: queue e-mails (each under a
unique key, with its calendar object), plan or drop reminders, keep its copies of events and
registrations. Every handler runs inside the consumer's transaction, so the e-mails queued,
the reminders planned and the message marked handled commit together.

What a change means for a person (which e-mail, which calendar method, which reminders) is
decided by ``domain.registration_reaction`` and ``domain.event_reaction``; this module only
reads what they need and writes what they decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from sto_notifications import domain, repository
from sto_notifications.adapters.rendering import EmailRenderer
from sto_notifications.domain import EmailRequest, NewsletterWish, Reaction
from sto_notifications.repository import EventRow, RegistrationRow
from sto_notifications.service.follow_ups import FollowUps
from sto_notifications.service.queueing import (
    Calendar,
    EmailQueue,
    calendar_of,
    cancellation_notice,
    event_email,
    event_row,
    rekey,
    update_notice,
)
from sto_notifications.service.wakeups import EMAIL_QUEUED, WORK_CHANGED, notify
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.events import (
    DEFAULT_REMINDER_OFFSETS_HOURS,
    EventCancelled,
    EventEnded,
    EventPublished,
    EventRescheduled,
    EventSnapshot,
    EventUpdated,
    EventWentLive,
)
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationConfirmationResent,
    RegistrationConfirmed,
    RegistrationCorrected,
    RegistrationExportRequested,
    RegistrationPromoted,
    RegistrationsAnonymised,
    RegistrationSignUpRepeated,
    RegistrationView,
    RegistrationWaitlisted,
)
from stolive_shared.links import DATA_EXPORT_VALID_S, PersonalLinks
from stolive_shared.privacy import keyring, person_key

log = logging.getLogger(__name__)

SeatMessage = RegistrationConfirmed | RegistrationPromoted
RegistrationMessage = (
    RegistrationConfirmed
    | RegistrationPromoted
    | RegistrationWaitlisted
    | RegistrationCancelled
    | RegistrationSignUpRepeated
    | RegistrationExportRequested
    | RegistrationCorrected
    | RegistrationConfirmationResent
)
EventChanged = EventPublished | EventUpdated | EventEnded


@dataclass
class NotificationsService:
    """The reactions to messages: one method per message class (``consumers`` maps them)."""

    schema: str
    links: PersonalLinks
    mail_from: str
    clock: Clock = utc_now
    renderer: EmailRenderer = field(default_factory=EmailRenderer)
    # The privacy statement in force (settings.privacy_statement_version): what a sign-up's
    # newsletter tick agreed to.
    privacy_version: str = ""
    emails: EmailQueue = field(init=False)

    follow_ups: FollowUps = field(init=False)

    def __post_init__(self) -> None:
        self.emails = EmailQueue(self.mail_from, self.person_key, self.clock, self.renderer)
        self.follow_ups = FollowUps(self.links, self.emails)

    # -- registrations -----------------------------------------------------------------------

    async def on_seat(self, conn: asyncpg.Connection, message: SeatMessage) -> None:
        change: domain.RegistrationChange = (
            "promoted" if isinstance(message, RegistrationPromoted) else "confirmed"
        )
        await self._registration_changed(conn, message, change)

    async def on_waitlisted(
        self, conn: asyncpg.Connection, message: RegistrationWaitlisted
    ) -> None:
        await self._registration_changed(conn, message, "waitlisted")

    async def on_registration_cancelled(
        self, conn: asyncpg.Connection, message: RegistrationCancelled
    ) -> None:
        await self._registration_changed(
            conn,
            message,
            "cancelled",
            previous_status=message.previous_status,
            event_cancelled=message.reason == domain.EVENT_CANCELLED_REASON,
        )

    async def _addressee(
        self, conn: asyncpg.Connection, message: RegistrationMessage
    ) -> domain.Addressee | None:
        """The person a registration message is about, or None (logged) when its contact can
        no longer be read: erased, past its retention, or from before contacts were sealed.
        Such a message changes nothing here: what it could bring back is gone on purpose."""
        view = message.registration
        contact = await keyring.open_contact(conn, view.contact)
        if contact is None:
            log.info("skipped a %s message: its contact was erased", message.type)
            return None
        return domain.Addressee(
            name=contact.name,
            email=contact.email,
            manage_url=self.links.manage(view.registration_id),
            join_url=self.links.watch(view.event_id, view.viewer_id) if view.webinar else None,
        )

    async def on_sign_up_repeated(
        self, conn: asyncpg.Connection, message: RegistrationSignUpRepeated
    ) -> None:
        """Someone signed this address up again: tell the address, not whoever typed it."""
        to = await self._addressee(conn, message)
        if to is not None:
            await self.emails.queue(
                conn, domain.repeated_sign_up_email(message.registration, to, message.message_id)
            )

    async def on_registration_corrected(
        self, conn: asyncpg.Connection, message: RegistrationCorrected
    ) -> None:
        """An organiser corrected the details: the reminders use the corrected name."""
        to = await self._addressee(conn, message)
        if to is not None:
            await self._keep_copy(conn, message.registration, to)

    async def on_confirmation_resent(
        self, conn: asyncpg.Connection, message: RegistrationConfirmationResent
    ) -> None:
        """The confirmation again, to the registration's own address, once per message."""
        view = message.registration
        to = await self._addressee(conn, message)
        email = to and domain.resent_confirmation_email(view, to, message.message_id)
        if not isinstance(email, EmailRequest) or to is None:
            return
        await self._keep_copy(conn, view, to)
        registration = await repository.get_registration(conn, view.registration_id)
        event = await repository.get_event(conn, view.event_id)
        calendar: Calendar | None = None
        if email.kind == "registration_confirmed" and registration and event:
            calendar = (registration, event, "REQUEST")
        await self.emails.queue(conn, email, calendar=calendar)

    async def on_export_requested(
        self, conn: asyncpg.Connection, message: RegistrationExportRequested
    ) -> None:
        """The link to the person's data goes to their own address, valid for a day."""
        to = await self._addressee(conn, message)
        if to is None:
            return
        now = self.clock()
        await self.emails.queue(
            conn,
            EmailRequest(
                kind="data_export",
                dedup_key=f"data_export:{message.message_id}",
                recipient=to.email,
                event_id=None,
                registration_id=message.registration.registration_id,
                context={
                    "name": to.name,
                    "export_url": self.links.data_export(
                        message.registration.registration_id, now.timestamp()
                    ),
                    "valid_until": now + timedelta(seconds=DATA_EXPORT_VALID_S),
                },
            ),
        )

    async def _registration_changed(
        self,
        conn: asyncpg.Connection,
        message: RegistrationMessage,
        change: domain.RegistrationChange,
        previous_status: str = "",
        event_cancelled: bool = False,
    ) -> None:
        view = message.registration
        to = await self._addressee(conn, message)
        if to is None:
            return
        # The event's row first (as the events consumer takes it): whichever of a seat and
        # the event's cancellation commits second sees the other.
        await self._keep_copy(conn, view, to)
        if change in ("confirmed", "waitlisted") and view.newsletter_opt_in:
            # The sign-up form's opt-in: still a double opt-in, by its own email.
            await self.subscribe(
                conn,
                NewsletterWish(
                    email=to.email,
                    name=to.name,
                    role=view.attendee.role,
                    region_code=view.attendee.region_code,
                    interests=view.attendee.profiles,
                    source="registration",
                ),
            )
        registration = await repository.get_registration(conn, view.registration_id)
        event = await repository.get_event(conn, view.event_id)
        if registration is None or event is None:
            return
        reaction = domain.registration_reaction(
            change,
            previous_status=previous_status,
            event_cancelled=event_cancelled or event.status == "cancelled",
            invited=registration.ics_sequence >= 0,
        )
        await self._apply_reminders(conn, reaction, registration, event)
        if reaction.email is None:
            return
        calendar = calendar_of(reaction, registration, event)
        if reaction.email == "event_cancelled":
            request = cancellation_notice(registration, event, calendar is not None)
        else:
            request = domain.registration_email(reaction.email, view, to)
        await self.emails.queue(conn, request, calendar=calendar)

    async def _keep_copy(
        self, conn: asyncpg.Connection, view: RegistrationView, to: domain.Addressee
    ) -> None:
        """What a registration message tells of the event and the person, kept here: only
        what the e-mails need (no organisation), deleted on erasure."""
        await repository.upsert_event(
            conn,
            EventRow(
                event_id=view.event_id,
                revision=view.event_revision,
                status="published",
                title=view.event_title,
                starts_at=view.event_starts_at,
                ends_at=view.event_ends_at,
                venue=None,
                replay_url=None,
                reminder_offsets_hours=DEFAULT_REMINDER_OFFSETS_HOURS,
            ),
            from_view=True,
        )
        await repository.upsert_registration(
            conn,
            registration_id=view.registration_id,
            event_id=view.event_id,
            status=view.status,
            name=to.name,
            email=to.email,
            role=view.attendee.role,
            region_code=view.attendee.region_code,
            viewer_id=view.viewer_id,
            manage_url=to.manage_url,
            person_key=self.person_key(to.email),
        )

    # -- events ------------------------------------------------------------------------------

    async def on_event_cancelled(self, conn: asyncpg.Connection, message: EventCancelled) -> None:
        await self._event_changed(conn, message.event, "cancelled", reason=message.reason)

    async def on_event_rescheduled(
        self, conn: asyncpg.Connection, message: EventRescheduled
    ) -> None:
        await self._event_changed(
            conn, message.event, "rescheduled", previous_starts_at=message.previous_starts_at
        )

    async def on_event_went_live(self, conn: asyncpg.Connection, message: EventWentLive) -> None:
        await self._event_changed(conn, message.event, "went_live")

    async def on_event_changed(self, conn: asyncpg.Connection, message: EventChanged) -> None:
        if isinstance(message, EventUpdated):
            noticed = domain.noticeable_changes(message.changed_fields, message.event.status)
            await self._event_changed(conn, message.event, "updated", noticed=noticed)
            return
        change: domain.EventChange = "published" if isinstance(message, EventPublished) else "ended"
        await self._event_changed(conn, message.event, change)

    async def _event_changed(
        self,
        conn: asyncpg.Connection,
        snapshot: EventSnapshot,
        change: domain.EventChange,
        *,
        noticed: tuple[str, ...] = (),
        **facts: Any,
    ) -> None:
        """Store the snapshot (the newest revision wins) and tell each registrant what it
        means for them (``noticed``: what of an update they hear about)."""
        before = await repository.get_event(conn, snapshot.event_id) if noticed else None
        event = event_row(snapshot)
        if not await repository.upsert_event(conn, event):
            return  # an older revision than we know: nothing it says still holds
        if change == "cancelled":
            await repository.drop_reminders(conn, event_id=event.event_id)
        for registration in await repository.registrations_of(
            conn, event.event_id, ("confirmed", "waitlisted")
        ):
            reaction = domain.event_reaction(
                change,
                status=registration.status,
                invited=registration.ics_sequence >= 0,
                noticed=noticed,
            )
            await self._apply_reminders(conn, reaction, registration, event)
            if reaction.email is None:
                continue
            calendar = calendar_of(reaction, registration, event)
            join = self.links.watch(event.event_id, registration.viewer_id)
            if reaction.email == "event_cancelled":
                request = cancellation_notice(registration, event, calendar is not None, **facts)
            elif reaction.email == "event_updated":
                request = update_notice(registration, before, event, noticed, join)
            else:
                extra = {"join_url": join} if change == "went_live" else {}
                request = event_email(
                    reaction.email,
                    registration,
                    event,
                    has_calendar=calendar is not None,
                    **facts,
                    **extra,
                )
            if change == "went_live":
                # Once per registration and event: going live twice sends no second email.
                request = rekey(request, f"event_live:{registration.registration_id}")
            await self.emails.queue(conn, request, calendar=calendar)

    # -- reminders ---------------------------------------------------------------------------

    async def _apply_reminders(
        self,
        conn: asyncpg.Connection,
        reaction: Reaction,
        registration: RegistrationRow,
        event: EventRow,
    ) -> None:
        if reaction.reminders == "plan":
            planned = domain.plan_reminders(
                event.starts_at, event.reminder_offsets_hours, self.clock()
            )
            await repository.plan_reminders(
                conn, registration.registration_id, event.event_id, event.revision, planned
            )
            await notify(conn, WORK_CHANGED)
        elif reaction.reminders == "drop":
            await repository.drop_reminders(conn, registration_id=registration.registration_id)

    async def queue_due_reminders(self, conn: asyncpg.Connection, limit: int = 200) -> int:
        """Queue every reminder due by now (see ``domain``: catch-up and missed)."""
        now = self.clock()
        queued = 0
        for due in await repository.claim_due_reminders(conn, now, limit):
            event, registration = due.event, due.registration
            if (
                event.status == "cancelled"
                or registration.status != "confirmed"
                or due.event_revision != event.revision
            ):
                await repository.settle_reminder(
                    conn, due.registration_id, due.offset_minutes, "dropped", None
                )
                continue
            verdict = domain.catch_up_verdict(due.due_at, event.starts_at, now)
            if verdict != "send":
                await repository.settle_reminder(
                    conn, due.registration_id, due.offset_minutes, "missed", None
                )
                continue
            request = event_email(
                "reminder",
                registration,
                event,
                label=domain.reminder_label(due.offset_minutes),
                join_url=self.links.watch(event.event_id, registration.viewer_id)
                if event.venue is None
                else None,
            )
            request = rekey(
                request,
                domain.reminder_dedup_key(
                    registration.registration_id, due.offset_minutes, event.revision
                ),
            )
            rendered = self.renderer.render("reminder", request.context)
            email_id = await repository.queue_email(
                conn, request, rendered, self.person_key(request.recipient), at=now
            )
            await repository.settle_reminder(
                conn, due.registration_id, due.offset_minutes, "queued", email_id
            )
            queued += 1
        if queued:
            await notify(conn, EMAIL_QUEUED)
        return queued

    # -- people ------------------------------------------------------------------------------

    def person_key(self, email: str) -> str:
        """How this service names a person without their address (``privacy.person_key``)."""
        return person_key(self.links.secret, email)

    async def fill_person_keys(self, conn: asyncpg.Connection) -> int:
        """Keyed hashes for rows from before them (one batch; the scheduler repeats it)."""
        return await repository.fill_person_keys(conn, self.person_key)

    async def on_person_erased(self, conn: asyncpg.Connection, message: PersonErased) -> None:
        erased = await repository.erase_person(
            conn, list(message.registration_ids), message.person_key, message.email_sha256
        )
        log.info("erased a person: %s", erased)

    async def on_registrations_anonymised(
        self, conn: asyncpg.Connection, message: RegistrationsAnonymised
    ) -> None:
        """Past their retention period: the copies of these registrations, their reminders
        and attendance go; their e-mails keep only what counting needs."""
        removed = await repository.erase_person(conn, list(message.registration_ids), None)
        log.info("registrations anonymised: %s", removed)

    async def subscribe(self, conn: asyncpg.Connection, wish: NewsletterWish) -> bool:
        """Record the wish and send the opt-in email; False for an address we cannot use.
        A confirmed subscriber is not mailed again (and nobody learns who is subscribed)."""
        email = wish.email.strip()
        if not domain.is_valid_address(email):
            return False
        subscriber = await repository.add_subscriber(
            conn,
            email=email,
            email_sha256=domain.email_sha256(email),
            person_key=self.person_key(email),
            name=domain.display_name(wish.name),
            role=wish.role,
            region_code=wish.region_code,
            interests=list(wish.interests),
            source=wish.source,
            privacy_version=wish.privacy_version or self.privacy_version,
        )
        if subscriber.status != "pending":
            return True
        request = EmailRequest(
            kind="subscription_confirmation",
            # One opt-in email per subscriber per day: repeated posts do not flood a mailbox.
            dedup_key=f"subscription_confirmation:{subscriber.id}:{self.clock():%Y-%m-%d}",
            recipient=subscriber.email,
            event_id=None,
            registration_id=None,
            context={
                "name": subscriber.name,
                "confirm_url": self.links.newsletter_confirmation(subscriber.id),
            },
        )
        await self.emails.queue(conn, request)
        return True
