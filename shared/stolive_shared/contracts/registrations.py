"""Messages on the registrations topic, keyed by event id.

The contact (name, email) travels only where a consumer must act on it (the notifications
service sends the email). ``person.erased`` tells every service to remove what it holds.

Version 2 of every message carrying a ``RegistrationView`` added the newsletter opt-in of the
sign-up form and the attendee's profiles (additions only; ``upcast_registration_v1_v2`` fills
them in for version 1: no opt-in, no profiles). Consumers learn version 2 before registrations
sends it.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import REGISTRATIONS

RegistrationStatus = Literal["confirmed", "waitlisted", "cancelled"]


class Attendee(BaseModel):
    """Who registered, as the sign-up form collected it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    email: str
    organisation: str = ""
    role: str = "anders"
    region_code: str | None = None
    # Since version 2: codes of the technical profiles the person is interested in
    # (``stolive_shared.programme.PROFILES``).
    profiles: tuple[str, ...] = ()


class RegistrationView(BaseModel):
    """A registration after the change, with the event details emails need."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registration_id: uuid.UUID
    event_id: uuid.UUID
    status: RegistrationStatus
    attendee: Attendee
    viewer_id: str
    manage_url: str
    event_title: str
    event_starts_at: AwareDatetime
    event_ends_at: AwareDatetime
    event_revision: int
    # The personal watch link of a webinar registration (added later: older messages lack it).
    join_url: str | None = None
    # Since version 2: the person ticked "send me the newsletter" on the sign-up form. A wish,
    # not yet a subscription: the newsletter still asks them to confirm (double opt-in).
    newsletter_opt_in: bool = False


class _RegistrationMessage(Message):
    TOPIC: ClassVar[str] = REGISTRATIONS.name
    registration: RegistrationView

    def partition_key(self) -> str:
        return str(self.registration.event_id)


class RegistrationConfirmed(_RegistrationMessage):
    type: Literal["registration.confirmed"] = "registration.confirmed"
    version: Literal[2] = 2


class RegistrationWaitlisted(_RegistrationMessage):
    type: Literal["registration.waitlisted"] = "registration.waitlisted"
    version: Literal[2] = 2
    waitlist_position: int


class RegistrationPromoted(_RegistrationMessage):
    """A waitlisted person got a seat that came free."""

    type: Literal["registration.promoted"] = "registration.promoted"
    version: Literal[2] = 2


class RegistrationCancelled(_RegistrationMessage):
    type: Literal["registration.cancelled"] = "registration.cancelled"
    version: Literal[2] = 2
    previous_status: RegistrationStatus
    reason: str = ""


class RegistrationCheckedIn(_RegistrationMessage):
    """An organiser checked the person in at a physical meeting (by list or by QR code)."""

    type: Literal["registration.checked_in"] = "registration.checked_in"
    version: Literal[2] = 2
    checked_in_at: AwareDatetime


class RegistrationSignUpRepeated(_RegistrationMessage):
    """Someone signed up again with an address already registered for the event. The answer
    they saw told nothing; the address itself is told, with its own links. Changes nothing."""

    type: Literal["registration.sign_up_repeated"] = "registration.sign_up_repeated"
    version: Literal[1] = 1


class PersonErased(Message):
    """Everything held about this email address must go; counts may stay."""

    TOPIC: ClassVar[str] = REGISTRATIONS.name
    type: Literal["person.erased"] = "person.erased"
    version: Literal[1] = 1
    email_sha256: str
    registration_ids: tuple[uuid.UUID, ...]
    erased_at: AwareDatetime

    def partition_key(self) -> str:
        return self.email_sha256


def upcast_registration_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no newsletter opt-in and no profiles: none given (fills in, never
    overwrites)."""
    registration = data.get("registration")
    if isinstance(registration, dict):
        registration = {"newsletter_opt_in": False, **registration}
        attendee = registration.get("attendee")
        if isinstance(attendee, dict):
            registration["attendee"] = {"profiles": [], **attendee}
        data["registration"] = registration
    return data


# The messages that carry a ``RegistrationView``: version 2 since the additions above.
REGISTRATION_VIEW_MESSAGES: tuple[type[_RegistrationMessage], ...] = (
    RegistrationConfirmed,
    RegistrationWaitlisted,
    RegistrationPromoted,
    RegistrationCancelled,
    RegistrationCheckedIn,
)

REGISTRATION_MESSAGES: tuple[type[Message], ...] = (
    RegistrationConfirmed,
    RegistrationWaitlisted,
    RegistrationPromoted,
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationSignUpRepeated,
    PersonErased,
)
