"""What the notifications service decides: which email a fact calls for, when reminders fall,
who a mailing reaches, and how failures are retried.

Pure: rendering, SQL and sending happen elsewhere. Every email is identified by a dedup key
(kind, subject of the email and event revision), so the same fact never queues two emails.

Reminder scheduling
-------------------
An event carries ``reminder_offsets_hours`` (default 24 h and 1 h). A reminder is due exactly
that many *elapsed* hours before the start, computed in UTC: across the end of summer time on
2026-10-25 the 24 h reminder of a 10:00 (CET) event goes out at 11:00 CEST the day before,
09:00 UTC, because 24 hours earlier is what "24 hours before" means. Each (registration,
offset) has one row in ``reminders``; its email's dedup key is
``reminder:<registration>:<offset minutes>:<event revision>``, written before sending, so one
reminder per registration, offset and event revision can exist, however often the scheduler
runs or restarts.

- **Planning** happens when a seat is confirmed (sign-up or promotion), when the event moves
  and when its reminder schedule changes. A reminder whose moment has already passed *at
  planning time* is ``skipped``: the person just received a confirmation or change notice that
  says everything a reminder would. Someone signing up 30 minutes before the start gets no
  reminder at all; someone signing up 3 hours before gets only the 1 h one.
- **Catch-up**: a reminder that was planned for the future but fell due while the service was
  down is sent late, as long as the event has not started yet; once it has started the
  reminder is ``missed`` (a "begint over een uur" after the start helps nobody).
- **Reschedule**: every reminder is planned again from the new start with the new revision, so
  a 24 h reminder already sent for the old date is sent again for the new one.
- **Cancellation** of the event or the registration drops every pending reminder.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from stolive_shared.contracts.notifications import EmailKind
from stolive_shared.contracts.registrations import RegistrationView
from stolive_shared.errors import DomainError

# What a registration message says happened to it (one per message class).
RegistrationChange = Literal["confirmed", "promoted", "waitlisted", "cancelled"]
# What an event message says happened to the event.
EventChange = Literal["published", "updated", "rescheduled", "went_live", "ended", "cancelled"]
CalendarMethod = Literal["REQUEST", "CANCEL"]

_SEAT_EMAILS: dict[RegistrationChange, EmailKind] = {
    "confirmed": "registration_confirmed",
    "promoted": "registration_promoted",
    "waitlisted": "registration_waitlisted",
    "cancelled": "registration_cancelled",
}


@dataclass(frozen=True)
class Reaction:
    """What one change means for one registered person: an e-mail of this kind (or none),
    the calendar object it carries (or none), and what happens to their reminders."""

    email: EmailKind | None = None
    calendar: CalendarMethod | None = None
    reminders: Literal["plan", "drop", "keep"] = "keep"


NOTHING = Reaction()


def registration_reaction(
    change: RegistrationChange,
    *,
    previous_status: str = "",
    event_cancelled: bool = False,
    invited: bool = False,
) -> Reaction:
    """A seat brings the confirmation with the invitation and the reminders; the waiting list
    an e-mail alone. A cancellation drops the reminders and says so, withdrawing the
    invitation the person had (``invited``).

    Once the event is cancelled (known here, or the reason of the registration's
    cancellation), whatever the registration message is, the person gets the event's
    cancellation notice instead, withdrawing their invitation if they had one: a seat that
    arrives after the event's cancellation is never confirmed, and whoever the event's own
    notice missed (their seat came later, or its cancellation came first) is told. That
    notice has one key per registration, so it goes once, whatever the order."""
    if event_cancelled:
        return Reaction("event_cancelled", "CANCEL" if invited else None, "drop")
    if change in ("confirmed", "promoted"):
        return Reaction(_SEAT_EMAILS[change], "REQUEST", "plan")
    if change == "waitlisted":
        return Reaction(_SEAT_EMAILS[change])
    calendar: CalendarMethod | None = (
        "CANCEL" if previous_status == "confirmed" and invited else None
    )
    return Reaction("registration_cancelled", calendar, "drop")


# Why registrations cancels every seat of a cancelled event (``registration.cancelled``).
EVENT_CANCELLED_REASON = "event_cancelled"


def event_cancelled_key(registration_id: uuid.UUID) -> str:
    """One cancellation notice per registration: an event is cancelled once."""
    return f"event_cancelled:{registration_id}"


# What of a published event its registrants hear about when it changes, with an updated
# invitation, in the order the e-mail says it: first what changes where or how a person takes
# part (the old and the new place; their own watch link), then a line for each of the others.
# A move in time comes as ``event.rescheduled``.
NOTICEABLE_CHANGES = ("venue", "stream_url", "title", "description", "captions_url")


def noticeable_changes(changed_fields: tuple[str, ...], status: str) -> tuple[str, ...]:
    """What of an ``event.updated`` the registrants are told; nothing for an event that is
    not ahead of them (a draft has nobody, an ended or cancelled one has nothing to change)."""
    if status not in ("published", "live"):
        return ()
    return tuple(name for name in NOTICEABLE_CHANGES if name in changed_fields)


def event_reaction(
    change: EventChange, *, status: str, invited: bool, noticed: tuple[str, ...] = ()
) -> Reaction:
    """What a change of the event means for a person registered with ``status``
    (``invited``: they hold our calendar invitation; ``noticed``: what of an update they
    are told, ``noticeable_changes``)."""
    seated = status == "confirmed"
    if change == "cancelled":
        return Reaction("event_cancelled", "CANCEL" if invited else None, "drop")
    if change == "rescheduled":
        return Reaction(
            "event_rescheduled", "REQUEST" if seated else None, "plan" if seated else "keep"
        )
    if change == "went_live":
        return Reaction("event_live") if seated else NOTHING
    if change == "updated" and seated and noticed:
        return Reaction("event_updated", "REQUEST", "plan")
    if change in ("published", "updated"):
        return Reaction(reminders="plan") if seated else NOTHING
    return NOTHING


def follow_up(attended: bool, attended_as: str | None, has_replay: bool) -> EmailKind | None:
    """After the attendance is final: thanks to who attended live (or was there), the
    replay to who did not attend at all, once there is one; nothing for who attended by
    replay already (their certificate e-mail said it all)."""
    if attended:
        return None if attended_as == "replay" else "thank_you"
    return "replay" if has_replay else None


def follow_up_key(kind: EmailKind, registration_id: uuid.UUID) -> str:
    """One thank-you, one replay and one certificate e-mail per registration, ever: however
    often the replay changes or attendance is recorded again."""
    return f"{kind}:{registration_id}"


def certificate_ready(attended_as: str | None, certificate: bool) -> bool:
    """A certificate earned by watching the replay, after the follow-ups went: say so."""
    return attended_as == "replay" and certificate


_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class NewsletterWish:
    """Someone asks for the newsletter: on its own form, or by the tick on a sign-up form.
    Either way it takes the opt-in e-mail's link before anything is sent."""

    email: str
    name: str
    role: str | None
    region_code: str | None
    interests: tuple[str, ...]
    source: str  # "subscribe_form" or "registration"
    privacy_version: str = ""  # the privacy statement agreed to (settings' version)


@dataclass(frozen=True)
class EmailRequest:
    """An email to queue: who, what kind, about what, and the facts the template shows."""

    kind: EmailKind
    dedup_key: str
    recipient: str
    event_id: uuid.UUID | None
    registration_id: uuid.UUID | None
    context: dict[str, object]


@dataclass(frozen=True)
class Addressee:
    """Whom an e-mail about a registration goes to, with the personal links it carries: the
    contact opened from the message's sealed one, the links made here from the ids."""

    name: str
    email: str
    manage_url: str
    join_url: str | None = None


def repeated_sign_up_email(
    registration: RegistrationView, to: Addressee, notice_id: uuid.UUID
) -> EmailRequest:
    """ "Je was al aangemeld": to the address itself, with its own links, once per notice."""
    return _about(
        registration,
        to,
        "registration_repeated",
        f"registration_repeated:{registration.registration_id}:{notice_id}",
        status=registration.status,
        join_url=to.join_url,
    )


def registration_email(
    kind: EmailKind, registration: RegistrationView, to: Addressee
) -> EmailRequest:
    """An e-mail about the registration's own change; one per kind and event revision."""
    return _about(
        registration,
        to,
        kind,
        f"{kind}:{registration.registration_id}:{registration.event_revision}",
        ends_at=registration.event_ends_at,
    )


# What an organiser's "send the confirmation again" sends, by the registration's status.
_RESENDABLE: dict[str, EmailKind] = {
    "confirmed": "registration_confirmed",
    "waitlisted": "registration_waitlisted",
}


def resent_confirmation_email(
    registration: RegistrationView, to: Addressee, message_id: uuid.UUID
) -> EmailRequest | None:
    """The sign-up's confirmation (or waiting-list) e-mail again, once per request; nothing
    for a cancelled registration."""
    kind = _RESENDABLE.get(registration.status)
    if kind is None:
        return None
    return _about(
        registration,
        to,
        kind,
        f"confirmation_resent:{message_id}",
        ends_at=registration.event_ends_at,
    )


def _about(
    registration: RegistrationView,
    to: Addressee,
    kind: EmailKind,
    dedup_key: str,
    **context: object,
) -> EmailRequest:
    """An e-mail to the registered person about their registration."""
    return EmailRequest(
        kind=kind,
        dedup_key=dedup_key,
        recipient=to.email,
        event_id=registration.event_id,
        registration_id=registration.registration_id,
        context={
            "name": to.name,
            "event_title": registration.event_title,
            "starts_at": registration.event_starts_at,
            "manage_url": to.manage_url,
            **context,
        },
    )


# --- reminders -------------------------------------------------------------------------------

ReminderStatus = Literal["pending", "skipped"]


@dataclass(frozen=True)
class PlannedReminder:
    offset_minutes: int
    due_at: datetime
    status: ReminderStatus


def offset_minutes(hours: float) -> int:
    """Hour offsets may be fractional (1.5 h); stored as whole minutes."""
    return round(hours * 60)


def plan_reminders(
    starts_at: datetime, offsets_hours: tuple[float, ...], now: datetime
) -> list[PlannedReminder]:
    """Each offset's moment in UTC; those already past at planning time are skipped."""
    planned: dict[int, PlannedReminder] = {}
    for hours in offsets_hours:
        minutes = offset_minutes(hours)
        if minutes <= 0:
            continue
        # In UTC: an Amsterdam-aware datetime minus 24 h would be wall-clock arithmetic and
        # land an hour off across a DST change.
        due = starts_at.astimezone(UTC) - timedelta(minutes=minutes)
        planned[minutes] = PlannedReminder(minutes, due, "pending" if due > now else "skipped")
    return sorted(planned.values(), key=lambda r: r.due_at)


def catch_up_verdict(due_at: datetime, starts_at: datetime, now: datetime) -> str:
    """A due reminder is sent, even late after downtime, until the event has started."""
    if now < due_at:
        return "wait"
    return "send" if now < starts_at else "missed"


def reminder_dedup_key(registration_id: uuid.UUID, minutes: int, revision: int) -> str:
    return f"reminder:{registration_id}:{minutes}:{revision}"


def reminder_label(minutes: int) -> str:
    """'morgen' is wrong for 24 h before a 09:00 start seen at 09:00: say the duration."""
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "over 1 dag" if days == 1 else f"over {days} dagen"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "over 1 uur" if hours == 1 else f"over {hours} uur"
    return f"over {minutes} minuten"


# --- links and people ------------------------------------------------------------------------


def email_sha256(email: str) -> str:
    """How ``person.erased`` names an address: SHA-256 of the trimmed, lower-cased address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def is_valid_address(email: str) -> bool:
    """Strict enough that an address can never carry a header break or a second recipient."""
    return len(email) <= 254 and _ADDRESS.match(email) is not None


def display_name(name: str) -> str:
    """A name fit for a header or a greeting: no control characters, one line."""
    cleaned = name if name.isprintable() else "".join(c if c.isprintable() else " " for c in name)
    return " ".join(cleaned.split())[:120]


# --- mailings --------------------------------------------------------------------------------

AudienceKind = Literal["subscribers", "registrants", "attendees", "no_shows"]


@dataclass(frozen=True)
class Audience:
    """Who a mailing reaches. Subscribers are filtered by region, role and profile interest
    (an empty filter means everyone); the other kinds are the people of one event."""

    kind: AudienceKind = "subscribers"
    regions: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()
    event_id: uuid.UUID | None = None

    def problems(self) -> list[str]:
        if self.kind == "subscribers":
            return [] if self.event_id is None else ["Een nieuwsbrief kiest geen evenement."]
        if self.event_id is None:
            return ["Kies het evenement waarvan je de deelnemers wilt mailen."]
        return []

    def summary(self) -> dict[str, object]:
        """For the audit log: who, by filters and ids, never by address."""
        return {k: v for k, v in self.as_json().items() if v}

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "regions": list(self.regions),
            "roles": list(self.roles),
            "interests": list(self.interests),
            "event_id": str(self.event_id) if self.event_id else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Audience:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        kind = str(data.get("kind", "subscribers"))
        if kind not in ("subscribers", "registrants", "attendees", "no_shows"):
            raise ValueError(f"unknown audience kind {kind!r}")
        event = data.get("event_id")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            regions=strings("regions"),
            roles=strings("roles"),
            interests=strings("interests"),
            event_id=uuid.UUID(str(event)) if event else None,
        )


MailingStatus = Literal["draft", "scheduled", "sending", "sent", "cancelled"]
EDITABLE: frozenset[str] = frozenset({"draft", "scheduled"})


class MailingRefused(DomainError):
    """An organiser asked for something a mailing in its state cannot do (Dutch message)."""


def check_schedule(status: str, at: datetime, now: datetime) -> None:
    if status not in EDITABLE:
        raise MailingRefused("Deze mailing is al verstuurd of wordt nu verstuurd.")
    if at < now - timedelta(minutes=1):
        raise MailingRefused("Kies een moment in de toekomst, of verstuur nu.")


def check_editable(status: str) -> None:
    if status not in EDITABLE:
        raise MailingRefused("Een mailing die verstuurd wordt of is, kan niet meer veranderen.")


# --- retries ---------------------------------------------------------------------------------


def is_permanent(smtp_code: int | None) -> bool:
    """5xx is permanent (do not retry); 4xx and no answer at all are temporary."""
    return smtp_code is not None and 500 <= smtp_code < 600


def retry_delay(attempts: int) -> timedelta:
    """Backoff for temporary failures: 5 s, 10 s, 20 s ... capped at 30 minutes."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 1800))


def next_attempt(now: datetime, attempts: int) -> datetime:
    return now + retry_delay(attempts)


# What the console's "mail this event's people" links ask for (``ConsoleUrls.new_mailing``).
AUDIENCE_GROUPS: dict[str, AudienceKind] = {
    "registered": "registrants",
    "attended": "attendees",
    "no_shows": "no_shows",
}

AUDIENCE_KINDS: dict[str, str] = {
    "subscribers": "Abonnees van de nieuwsbrief",
    "registrants": "Deelnemers van een evenement",
    "attendees": "Aanwezigen van een evenement",
    "no_shows": "Aangemelde afwezigen van een evenement",
}
MAILING_STATUSES: dict[str, str] = {
    "draft": "Concept",
    "scheduled": "Ingepland",
    "sending": "Wordt verstuurd",
    "sent": "Verstuurd",
    "cancelled": "Geannuleerd",
}
