"""Calendar invitations (iCalendar, RFC 5545/5546) attached to seat, change and cancel emails.

One registration is one calendar object for its whole life: the UID is derived from the
registration id, so a client that imported the confirmation updates that same entry when a
reschedule (METHOD:REQUEST, higher SEQUENCE) or a cancellation (METHOD:CANCEL, higher
SEQUENCE, STATUS:CANCELLED) arrives. Times are written in UTC; clients show them locally.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress, vText

from sto_notifications.domain import CalendarMethod

UID_DOMAIN = "stolive.sterktechniekonderwijs.nl"


@dataclass(frozen=True)
class Invitation:
    registration_id: uuid.UUID
    sequence: int
    method: CalendarMethod
    title: str
    starts_at: datetime
    ends_at: datetime
    attendee_name: str
    attendee_email: str
    organiser_email: str
    url: str | None = None
    location: str | None = None
    description: str = ""


def uid_for(registration_id: uuid.UUID) -> str:
    return f"{registration_id}@{UID_DOMAIN}"


def invitation_ics(invitation: Invitation, stamp: datetime) -> str:
    calendar = Calendar()
    calendar.add("prodid", "-//Sterk Techniekonderwijs//STO Live//NL")
    calendar.add("version", "2.0")
    calendar.add("method", invitation.method)
    event = Event()
    event.add("uid", uid_for(invitation.registration_id))
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", invitation.starts_at.astimezone(UTC))
    event.add("dtend", invitation.ends_at.astimezone(UTC))
    event.add("summary", invitation.title)
    if invitation.description:
        event.add("description", invitation.description)
    if invitation.location or invitation.url:
        event.add("location", invitation.location or invitation.url)
    if invitation.url:
        event.add("url", invitation.url)
    event.add("status", "CANCELLED" if invitation.method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{invitation.organiser_email}")
    organizer.params["cn"] = vText("Sterk Techniekonderwijs")
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{invitation.attendee_email}")
    attendee.params["cn"] = vText(invitation.attendee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("ACCEPTED")
    event.add("attendee", attendee)
    calendar.add_component(event)
    ics: bytes = calendar.to_ical()
    return ics.decode()
