"""Messages on the registrations topic, keyed by event id.

No personal data travels in clear. The contact (name, e-mail address, organisation) is sealed
with the registration's data key (``contracts.sealed``, ``stolive_shared.privacy``); personal
links (manage, watch) are not sent at all: a service that mails them makes them from the ids
with ``PersonalLinks``. Role, region, profiles and the school site's code are categories the
figures group by, not a way to tell who someone is. ``person.erased`` tells every service to
remove what it holds.

Version 2 of every message carrying a ``RegistrationView`` added the newsletter opt-in of the
sign-up form and the attendee's profiles (additions only; ``upcast_registration_v1_v2`` fills
them in for version 1: no opt-in, no profiles). Consumers learn version 2 before registrations
sends it.

Version 3 (``registration.sign_up_repeated`` version 2) seals the contact: ``contact`` and
``webinar`` are added, the clear ``attendee`` name, e-mail and organisation and the
``manage_url`` are written empty, ``join_url`` is left out. ``upcast_registration_v2_v3``
fills in ``contact`` as None for older messages: their clear fields are never read again, so a
message from before sealing counts as one whose contact was erased (it cannot bring a person
back). Deploy version 3 with the topic drained (consumer lag 0).

Version 4 (``registration.sign_up_repeated`` version 3) adds the school site the person chose
on the form, ``attendee.school_code`` (BRIN + vestigingsnummer, as the events service's school
list names it): a category the figures group by, like the region, not a way to tell who
someone is (the typed school name stays in the sealed contact). ``upcast_registration_v3_v4``
fills it in as None for older messages (no school chosen). Consumers learn version 4 before
registrations sends it.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.contracts.topics import REGISTRATIONS

RegistrationStatus = Literal["confirmed", "waitlisted", "cancelled"]


class Attendee(BaseModel):
    """What the figures group a registration by. (Until version 2 also the contact in clear;
    since version 3 ``name``, ``email`` and ``organisation`` are written empty and never read:
    the contact travels sealed, ``RegistrationView.contact``.)"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    email: str = ""
    organisation: str = ""
    role: str = "anders"
    region_code: str | None = None
    # Since version 2: codes of the technical profiles the person is interested in
    # (``stolive_shared.programme.PROFILES``).
    profiles: tuple[str, ...] = ()
    # Since version 4: the school site chosen from the list (BRIN + vestigingsnummer, e.g.
    # "12AB00"); None for another school or organisation, typed in the sealed contact.
    school_code: str | None = None


class RegistrationView(BaseModel):
    """A registration after the change, with the event details emails need."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registration_id: uuid.UUID
    event_id: uuid.UUID
    status: RegistrationStatus
    attendee: Attendee
    # Since version 3: the contact, sealed with the registration's key; None where it cannot
    # be read (a message from before sealing).
    contact: Sealed | None = None
    viewer_id: str
    # Until version 2 the personal manage link; written empty since version 3.
    manage_url: str = ""
    # Since version 3: a webinar, whose personal watch link the e-mails carry.
    webinar: bool = False
    event_title: str
    event_starts_at: AwareDatetime
    event_ends_at: AwareDatetime
    event_revision: int
    # Until version 2 the personal watch link of a webinar; left out since version 3.
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
    version: Literal[4] = 4


class RegistrationWaitlisted(_RegistrationMessage):
    type: Literal["registration.waitlisted"] = "registration.waitlisted"
    version: Literal[4] = 4
    waitlist_position: int


class RegistrationPromoted(_RegistrationMessage):
    """A waitlisted person got a seat that came free."""

    type: Literal["registration.promoted"] = "registration.promoted"
    version: Literal[4] = 4


class RegistrationCancelled(_RegistrationMessage):
    type: Literal["registration.cancelled"] = "registration.cancelled"
    version: Literal[4] = 4
    previous_status: RegistrationStatus
    reason: str = ""


class RegistrationCheckedIn(_RegistrationMessage):
    """An organiser checked the person in at a physical meeting (by list or by QR code)."""

    type: Literal["registration.checked_in"] = "registration.checked_in"
    version: Literal[4] = 4
    checked_in_at: AwareDatetime


class RegistrationCorrected(_RegistrationMessage):
    """An organiser corrected a registration's details (name, school, role, region): every
    copy follows the new view; the status and the seat are unchanged."""

    type: Literal["registration.corrected"] = "registration.corrected"
    version: Literal[1] = 1


class RegistrationCheckInUndone(_RegistrationMessage):
    """An organiser took back a check-in made by mistake: the person counts as not present
    (unless they watched long enough)."""

    type: Literal["registration.check_in_undone"] = "registration.check_in_undone"
    version: Literal[1] = 1


class RegistrationConfirmationResent(_RegistrationMessage):
    """An organiser sent the confirmation again (the person lost it): the same e-mail and
    calendar invitation as at the sign-up, to the address itself, once per message."""

    type: Literal["registration.confirmation_resent"] = "registration.confirmation_resent"
    version: Literal[1] = 1


class RegistrationSignUpRepeated(_RegistrationMessage):
    """Someone signed up again with an address already registered for the event. The answer
    they saw told nothing; the address itself is told, with its own links. Changes nothing."""

    type: Literal["registration.sign_up_repeated"] = "registration.sign_up_repeated"
    version: Literal[3] = 3


class RegistrationExportRequested(_RegistrationMessage):
    """The person asked for their data from their manage page: the link to it goes to the
    address itself (the sealed contact), never to whoever pressed the button."""

    type: Literal["registration.export_requested"] = "registration.export_requested"
    version: Literal[1] = 1


class PersonErased(Message):
    """Everything held about this person must go; counts may stay.

    Since version 2 the person is named by ``person_key``, the address as a keyed hash
    (``stolive_shared.privacy.person_key``); version 1 named them by the plain SHA-256 of the
    address (``email_sha256``, written empty since), which anyone can test addresses against.
    """

    TOPIC: ClassVar[str] = REGISTRATIONS.name
    type: Literal["person.erased"] = "person.erased"
    version: Literal[2] = 2
    person_key: str | None = None
    email_sha256: str = ""
    registration_ids: tuple[uuid.UUID, ...]
    erased_at: AwareDatetime

    def partition_key(self) -> str:
        return self.person_key or self.email_sha256


class RegistrationsAnonymised(Message):
    """An event's registrations passed their retention period (``registration_retention_days``
    after the event): their name, address and typed school are gone (the chosen school site's
    code, a category like the region, stays), their keys forgotten. Every service drops what it
    holds about these registrations by name; counts stay."""

    TOPIC: ClassVar[str] = REGISTRATIONS.name
    type: Literal["registrations.anonymised"] = "registrations.anonymised"
    version: Literal[1] = 1
    event_id: uuid.UUID
    registration_ids: tuple[uuid.UUID, ...]
    anonymised_at: AwareDatetime

    def partition_key(self) -> str:
        return str(self.event_id)


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


def upcast_registration_v2_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 had no sealed contact and no webinar flag: no readable contact (the clear one
    is not read any more), a webinar where it carried a watch link."""
    registration = data.get("registration")
    if isinstance(registration, dict):
        webinar = bool(registration.get("join_url"))
        data["registration"] = {"contact": None, "webinar": webinar, **registration}
    return data


def upcast_registration_v3_v4(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 had no school site: none chosen (fills in, never overwrites)."""
    registration = data.get("registration")
    if isinstance(registration, dict):
        attendee = registration.get("attendee")
        if isinstance(attendee, dict):
            data["registration"] = {
                **registration,
                "attendee": {"school_code": None, **attendee},
            }
    return data


def upcast_person_erased_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 named the person by ``email_sha256`` alone: no keyed hash."""
    return {"person_key": None, **data}


# The messages that carry a ``RegistrationView`` and its versions (4 since the school site;
# ``RegistrationSignUpRepeated`` one behind, ``RegistrationCorrected``,
# ``RegistrationCheckInUndone`` and ``RegistrationConfirmationResent`` born with it at 1).
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
    RegistrationCorrected,
    RegistrationCheckInUndone,
    RegistrationConfirmationResent,
    RegistrationSignUpRepeated,
    RegistrationExportRequested,
    PersonErased,
    RegistrationsAnonymised,
)
