"""The registrations service's rules: who may sign up, and what the outcome is.

Pure: the seat itself is taken by one atomic conditional UPDATE in the repository, so these
rules decide only what a granted or refused seat means.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import RegistrationStatus
from stolive_shared.errors import DomainError
from stolive_shared.organisers.roles import Organiser
from stolive_shared.programme import PROFILES, ROLES

__all__ = ["PROFILES", "ROLES"]  # the programme's vocabulary, as the rules below use it

# A teacher may sign up this many colleagues of the same school in the same form.
MAX_COLLEAGUES = 10
WEBINAR = "webinar"
# Bounds on every free-text field, so a form or API body cannot store megabytes.
MAX_NAME = 120
MAX_EMAIL = 254
MAX_ORGANISATION = 200
MAX_REGION_CODE = 40
# A school site's code: BRIN number and vestigingsnummer ("12AB00").
SCHOOL_CODE = re.compile(r"^[0-9]{2}[A-Z]{2}[0-9]{2}$")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_LINE_BREAK = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


SCHOOL_UNKNOWN = "Kies je school uit de lijst, of kies 'Andere school of organisatie'."


class SchoolUnknown(DomainError):
    """A school code that is not in the list of school sites."""

    status = 422
    message = SCHOOL_UNKNOWN

    def __init__(self) -> None:
        super().__init__(field="school_code")


class EventUnknown(DomainError):
    status = 404
    message = "Evenement niet gevonden"


class RegistrationUnknown(DomainError):
    status = 404
    message = "Aanmelding niet gevonden"


class CheckInRefused(DomainError):
    """This registration cannot be checked in; the message says why, in Dutch."""


class ActionRefused(DomainError):
    """An organiser's action on a registration cannot be done now; the message says why."""


class SignUpRefused(DomainError):
    """The sign-up cannot be accepted; ``status`` is the HTTP answer (409 full, 410 closed)."""

    def __init__(self, message: str, status: Literal[409, 410]) -> None:
        super().__init__(message, status=status)


@dataclass(frozen=True)
class EventTerms:
    """What the registrations service knows of an event, enough to decide a sign-up."""

    id: uuid.UUID
    revision: int
    kind: str
    status: str
    title: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    waitlist_enabled: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    region_codes: tuple[str, ...] = ()

    @classmethod
    def of(cls, event: EventSnapshot) -> EventTerms:
        """The terms an event message states."""
        return cls(
            id=event.event_id,
            revision=event.revision,
            kind=event.kind,
            status=event.status,
            title=event.title,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            capacity=event.capacity,
            waitlist_enabled=event.waitlist_enabled,
            registration_opens_at=event.registration_opens_at,
            registration_closes_at=event.registration_closes_at,
            region_codes=event.region_codes,
        )


@dataclass(frozen=True)
class Applicant:
    name: str
    email: str
    organisation: str
    role: str
    region_code: str | None
    profiles: tuple[str, ...] = ()
    newsletter: bool = False
    # The school site chosen from the list (``schools``); None: another school or
    # organisation, typed in ``organisation``.
    school_code: str | None = None


def is_email(address: str) -> bool:
    """A plausible address: one @, a dot in the domain, no spaces or control characters,
    within the RFC's bounds."""
    return (
        len(address) <= MAX_EMAIL
        and _EMAIL.match(address) is not None
        and not _has_line_break(address)
    )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def applicant_problems(applicant: Applicant) -> dict[str, str]:
    """Field -> Dutch message for every field that is not acceptable."""
    problems: dict[str, str] = {}
    if not applicant.name.strip():
        problems["name"] = "Vul je naam in."
    elif len(applicant.name) > MAX_NAME:
        problems["name"] = f"Je naam is te lang (maximaal {MAX_NAME} tekens)."
    if _has_line_break(applicant.name):
        problems["name"] = "Een naam past op één regel."
    if not is_email(applicant.email.strip()):
        problems["email"] = "Vul een geldig e-mailadres in, bijvoorbeeld naam@school.nl."
    if len(applicant.organisation) > MAX_ORGANISATION:
        problems["organisation"] = (
            f"De naam van je organisatie is te lang (maximaal {MAX_ORGANISATION} tekens)."
        )
    elif _has_line_break(applicant.organisation):
        problems["organisation"] = "De naam van je organisatie past op één regel."
    region = applicant.region_code
    if region is not None and (len(region) > MAX_REGION_CODE or _has_line_break(region)):
        problems["region_code"] = "Kies een regio uit de lijst."
    if applicant.school_code is not None and not SCHOOL_CODE.match(applicant.school_code):
        problems["school_code"] = SCHOOL_UNKNOWN
    if applicant.role not in ROLES:
        problems["role"] = "Kies je rol."
    unknown = [p for p in applicant.profiles if p not in PROFILES]
    if unknown:
        problems["profiles"] = "Kies alleen profielen uit de lijst."
    return problems


def check_open(event: EventTerms, now: datetime) -> None:
    """Refuse with 410 when sign-up is not possible (cancelled, over, window closed)."""
    if event.status == "cancelled":
        raise SignUpRefused("Dit evenement is geannuleerd.", 410)
    if event.status == "ended" or now >= event.ends_at:
        raise SignUpRefused("Dit evenement is al voorbij.", 410)
    if event.status not in ("published", "live"):
        raise SignUpRefused("Aanmelden voor dit evenement is niet mogelijk.", 410)
    if event.registration_opens_at and now < event.registration_opens_at:
        raise SignUpRefused("De aanmelding is nog niet geopend.", 410)
    if event.registration_closes_at and now >= event.registration_closes_at:
        raise SignUpRefused("De aanmelding is gesloten.", 410)


def outcome(event: EventTerms, seat_granted: bool) -> RegistrationStatus:
    if seat_granted:
        return "confirmed"
    if event.waitlist_enabled:
        return "waitlisted"
    raise SignUpRefused("Dit evenement is vol.", 409)


def is_single_line(text: str) -> bool:
    return not _has_line_break(text)


def _has_line_break(text: str) -> bool:
    """CR, LF, the other line separators and control characters (NUL cannot even be
    stored) would let a name inject email headers or break a row."""
    return _LINE_BREAK.search(text) is not None


def group_problems(applicants: list[Applicant]) -> dict[int, dict[str, str]]:
    """Problems per person of a group sign-up (index 0 is the person filling in the form)."""
    problems: dict[int, dict[str, str]] = {}
    if len(applicants) > MAX_COLLEAGUES + 1:
        problems[0] = {"colleagues": f"Je kunt maximaal {MAX_COLLEAGUES} collega's aanmelden."}
    seen: set[str] = set()
    for index, applicant in enumerate(applicants):
        found = applicant_problems(applicant)
        email = normalise_email(applicant.email)
        if "email" not in found and email in seen:
            found["email"] = "Dit e-mailadres staat al in het formulier."
        seen.add(email)
        if found:
            problems.setdefault(index, {}).update(found)
    return problems


def seats_to_grant(capacity: int | None, confirmed: int, wanted: int) -> int:
    """How many of ``wanted`` new sign-ups get a seat; never more than are free.

    After a lowered capacity ``confirmed`` may exceed it: then nobody gets a seat, and
    nobody already confirmed loses one.
    """
    if capacity is None:
        return wanted
    return max(0, min(wanted, capacity - confirmed))


def promotions(seats: SeatState) -> int:
    """How many on the waiting list move into seats now: as many as the seat rule grants."""
    return seats_to_grant(seats.terms.capacity, seats.confirmed, seats.waitlisted)


def check_in_refusal(event: EventTerms, status: RegistrationStatus) -> str | None:
    """Why this registration cannot be checked in, in Dutch; None when it can."""
    if event.kind == WEBINAR:
        return "Inchecken kan alleen bij een bijeenkomst op locatie."
    if status == "cancelled":
        return "Deze aanmelding is geannuleerd."
    if status == "waitlisted":
        return "Deze persoon staat op de wachtlijst en heeft geen plek."
    return None


def email_digest(email: str) -> str:
    """The SHA-256 of the normalised address: names a person in messages without the address."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


@dataclass(frozen=True)
class Registration:
    id: uuid.UUID
    event_id: uuid.UUID
    status: RegistrationStatus
    applicant: Applicant
    viewer_id: str
    queue_number: int
    created_at: datetime
    checked_in_at: datetime | None = None
    group_id: uuid.UUID | None = None
    erased: bool = False


@dataclass(frozen=True)
class SeatState:
    """An event's terms with its seats taken and waiting-list length, read under its lock."""

    terms: EventTerms
    confirmed: int
    waitlisted: int


# At most this many seats left, the agenda and the form say how many.
FEW_PLACES = 10

AvailabilityKind = Literal["open", "few", "waitlist", "full", "closed", "not_yet"]


@dataclass(frozen=True)
class Availability:
    """What a person reads before filling in the form: a seat, a few left, the waiting list,
    full, closed, or not open yet. The form is offered only where it can be accepted."""

    kind: AvailabilityKind
    places_left: int | None = None
    opens_at: datetime | None = None

    @property
    def form_offered(self) -> bool:
        return self.kind in ("open", "few", "waitlist")


def availability(seats: SeatState, now: datetime) -> Availability:
    """The one definition of what the agenda and the form say about places (the same
    conditions ``check_open`` and ``seats_to_grant`` decide a sign-up by)."""
    event = seats.terms
    try:
        check_open(event, now)
    except SignUpRefused:
        opens = event.registration_opens_at
        if opens is not None and now < opens and event.status in ("published", "live"):
            return Availability("not_yet", opens_at=opens)
        return Availability("closed")
    if event.capacity is None:
        return Availability("open")
    left = max(0, event.capacity - seats.confirmed)
    if left == 0:
        return Availability("waitlist" if event.waitlist_enabled else "full", places_left=0)
    return Availability("few" if left <= FEW_PLACES else "open", places_left=left)


@dataclass(frozen=True)
class Planned:
    """What one sign-up of a batch comes to; exactly one field says so."""

    status: RegistrationStatus | None = None  # a new registration with this status
    waitlist_position: int = 0
    refused: SignUpRefused | None = None
    unknown_event: bool = False
    existing: bool = False  # the person already holds a registration: it is told again
    same_as: int | None = None  # the same person twice in one batch: the earlier one's answer


@dataclass
class SeatChange:
    confirmed: int = 0
    waitlisted: int = 0


def plan_sign_ups(
    wanted: list[tuple[uuid.UUID, str]],
    seats: dict[uuid.UUID, SeatState],
    existing: set[tuple[uuid.UUID, str]],
    now: datetime,
) -> tuple[list[Planned], dict[uuid.UUID, SeatChange]]:
    """Decide a batch of sign-ups (event id, normalised email) in arrival order.

    First come, first served within the batch as between batches: seats go to the earliest
    sign-ups, the rest join the waiting list in order (or are refused when there is none).
    """
    plan: list[Planned] = []
    changes: dict[uuid.UUID, SeatChange] = {}
    first_of: dict[tuple[uuid.UUID, str], int] = {}
    for index, key in enumerate(wanted):
        event_id = key[0]
        state = seats.get(event_id)
        if state is None:
            plan.append(Planned(unknown_event=True))
            continue
        try:
            check_open(state.terms, now)
        except SignUpRefused as refused:
            plan.append(Planned(refused=refused))
            continue
        if key in existing:
            # Answered as a new sign-up would be now (a full event without a waiting list
            # refuses it), so the answer never tells whether the address was registered.
            change = changes.get(event_id, SeatChange())
            granted = seats_to_grant(state.terms.capacity, state.confirmed + change.confirmed, 1)
            try:
                outcome(state.terms, granted > 0)
            except SignUpRefused as refused:
                plan.append(Planned(refused=refused))
                continue
            plan.append(Planned(existing=True))
            continue
        if key in first_of:
            plan.append(Planned(same_as=first_of[key]))
            continue
        first_of[key] = index
        change = changes.setdefault(event_id, SeatChange())
        granted = seats_to_grant(state.terms.capacity, state.confirmed + change.confirmed, 1) > 0
        try:
            status = outcome(state.terms, granted)
        except SignUpRefused as refused:
            plan.append(Planned(refused=refused))
            continue
        if status == "confirmed":
            change.confirmed += 1
            plan.append(Planned(status=status))
        else:
            change.waitlisted += 1
            plan.append(
                Planned(status=status, waitlist_position=state.waitlisted + change.waitlisted)
            )
    return plan, changes


# -- what organisers do by hand ---------------------------------------------------------------


@dataclass(frozen=True)
class AuditNote:
    """An organiser's action as the audit log (``organisers.audit``) keeps it, written in the
    transaction of the action itself. ``subject`` names a registration (``registration:<id>``)
    or a person by the keyed hash of their address: never the address."""

    who: Organiser
    action: str
    event_id: uuid.UUID | None = None
    subject: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def registration_subject(registration_id: uuid.UUID) -> str:
    return f"registration:{registration_id}"


def added_by_hand(seats: SeatState, now: datetime) -> RegistrationStatus:
    """What a registration an organiser adds gets: a seat if one is free, else the waiting
    list (or a refusal when there is none), as for a sign-up. The sign-up window does not
    apply (an organiser adds the one who phoned in late); a cancelled or past event refuses."""
    event = seats.terms
    if event.status == "cancelled":
        raise SignUpRefused("Dit evenement is geannuleerd.", 410)
    if event.status == "ended" or now >= event.ends_at:
        raise SignUpRefused("Dit evenement is al voorbij.", 410)
    if event.status not in ("published", "live"):
        raise SignUpRefused("Aanmelden voor dit evenement is niet mogelijk.", 410)
    return outcome(event, seats_to_grant(event.capacity, seats.confirmed, 1) > 0)


def promotion_refusal(
    registration: Registration, seats: SeatState, *, over_capacity: bool
) -> str | None:
    """Why an organiser cannot move this registration from the waiting list into a seat, in
    Dutch; None when they can. A free seat is taken in the person's favour, whatever their
    place on the list; a full event only when the organiser says so (``over_capacity``: one
    seat more than the capacity, as after a lowered capacity, which the seat rule allows)."""
    if registration.status != "waitlisted":
        return "Deze persoon staat niet (meer) op de wachtlijst."
    if registration.erased:
        return "De gegevens van deze persoon zijn verwijderd."
    capacity = seats.terms.capacity
    if capacity is not None and seats.confirmed >= capacity and not over_capacity:
        return (
            "Er is geen plaats vrij. Kies 'toch een plaats geven' om deze persoon boven de "
            "capaciteit te plaatsen."
        )
    return None


def entry_problems(applicant: Applicant) -> dict[str, str]:
    """What is wrong with a person as an organiser typed them in, per field, in Dutch: the
    sign-up form's rules, said to the organiser rather than to the person."""
    found = applicant_problems(applicant)
    said: dict[str, str] = {}
    if "name" in found:
        said["name"] = f"Vul de naam in (op één regel, hoogstens {MAX_NAME} tekens)."
    if "email" in found:
        said["email"] = found["email"]
    if "organisation" in found:
        said["organisation"] = (
            f"Vul de school of organisatie in op één regel (hoogstens {MAX_ORGANISATION} tekens)."
        )
    if "role" in found:
        said["role"] = "Kies een rol."
    if "region_code" in found:
        said["region_code"] = found["region_code"]
    return said


def correction_problems(name: str, organisation: str, role: str) -> dict[str, str]:
    """What is wrong with corrected details (name, school, role), per field, in Dutch."""
    return entry_problems(Applicant(name, "naam@school.nl", organisation, role, None))


def change_refusal(registration: Registration) -> str | None:
    """Why an organiser cannot change this registration's details or send it mail."""
    if registration.erased:
        return "De gegevens van deze persoon zijn verwijderd."
    if registration.status == "cancelled":
        return "Deze aanmelding is geannuleerd."
    return None


def undo_check_in_refusal(registration: Registration) -> str | None:
    if registration.checked_in_at is None:
        return "Deze persoon is niet ingecheckt."
    return None
