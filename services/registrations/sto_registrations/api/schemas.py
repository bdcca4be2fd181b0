"""Request and response bodies of the registrations JSON API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sto_registrations.domain import (
    MAX_COLLEAGUES,
    MAX_EMAIL,
    MAX_NAME,
    MAX_ORGANISATION,
    MAX_REGION_CODE,
    is_email,
)
from stolive_shared.contracts.registrations import RegistrationStatus

Role = Literal[
    "programmaleider", "penvoerder", "schoolleider", "docent", "bedrijfsleven", "mbo",
    "ondersteuner", "anders",
]  # fmt: skip
Profile = Literal["BWI", "PIE", "M&T", "MaT", "MVI"]


def _email(value: str) -> str:
    if not is_email(value.strip()):
        raise ValueError("Vul een geldig e-mailadres in, bijvoorbeeld naam@school.nl.")
    return value.strip()


# The same check as the form's (cheaper than a DNS-aware validator on every sign-up).
Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL, json_schema_extra={"format": "email"}),
    AfterValidator(_email),
]
# One line, no control characters: a CR or LF in a name could inject email headers, and
# PostgreSQL cannot store NUL.
_ONE_LINE = r"^[^\x00-\x1f\x7f\x85\u2028\u2029]*$"


class Colleague(BaseModel):
    """A colleague of the same school, signed up in the same request."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_ONE_LINE)
    email: Email
    role: Role = "docent"


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_ONE_LINE)
    email: Email
    organisation: str = Field(default="", max_length=MAX_ORGANISATION, pattern=_ONE_LINE)
    role: Role
    region_code: str | None = Field(default=None, max_length=MAX_REGION_CODE, pattern=_ONE_LINE)
    school_code: str | None = Field(
        default=None,
        max_length=12,
        pattern=_ONE_LINE,
        description="The school site (BRIN + vestigingsnummer, e.g. 12AB00) from the events"
        " service's GET /events/api/schools; its colleagues are at the same site. Without it,"
        " `organisation` names the school. An unknown code is a 422.",
        examples=["12AB00"],
    )
    profiles: list[Profile] = Field(default_factory=list, max_length=5)
    privacy_consent: Literal[True] = Field(description="Agreement to the privacy statement")
    newsletter: bool = False
    colleagues: list[Colleague] = Field(
        default_factory=list,
        max_length=MAX_COLLEAGUES,
        description="Colleagues of the same school and region; each gets their own registration"
        " and links. The person signing up confirms they agree.",
    )
    form_token: str = Field(
        max_length=100,
        description="From GET /api/events/{event_id}/form-token, fetched at least two seconds"
        " and at most 30 minutes before (the API's bot guard).",
    )


class FormToken(BaseModel):
    form_token: str
    usable_from: datetime
    expires_at: datetime


class RegistrationPublic(BaseModel):
    """One registration, to whoever holds its personal token."""

    id: uuid.UUID
    event_id: uuid.UUID
    status: RegistrationStatus
    name: str
    created_at: datetime
    waitlist_position: int | None = Field(
        default=None, description="Place on the waiting list, while on it"
    )
    join_url: str | None = Field(default=None, description="Personal watch link (webinars)")


class ColleagueReceived(BaseModel):
    email: str
    refused: str | None = Field(
        default=None, description="Why this colleague got no place: the event is full"
    )


class SignUpReceived(BaseModel):
    """The answer to every sign-up, for a new address and an address already registered
    alike: what came of it is in each person's own mailbox, with their own links."""

    event_id: uuid.UUID
    received: int = Field(description="People in this sign-up: the person and their colleagues")
    message: str
    colleagues: list[ColleagueReceived] = Field(default_factory=list)


class Counts(BaseModel):
    event_id: uuid.UUID
    confirmed: int
    waitlisted: int
    cancelled: int
    checked_in: int = 0


class AttendeePublic(BaseModel):
    """One registration as organisers see it."""

    id: uuid.UUID
    status: RegistrationStatus
    name: str
    email: str
    organisation: str
    school_code: str | None = Field(default=None, description="The school site chosen, if any")
    school: str = Field(
        default="", description="The chosen site's label, else the organisation as typed"
    )
    role: str
    region_code: str | None
    profiles: list[str]
    newsletter: bool
    created_at: datetime
    checked_in_at: datetime | None
    group_id: uuid.UUID | None
    erased: bool
    check_in_url: str | None = Field(
        default=None, description="What the person's QR code holds (physical meetings)"
    )


class AttendeeList(BaseModel):
    event_id: uuid.UUID
    counts: Counts
    attendees: list[AttendeePublic]


class HandSignUp(BaseModel):
    """A person an organiser signs up (by phone, at the door): no consent tick or bot guard,
    the organiser answers for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_ONE_LINE)
    email: Email
    organisation: str = Field(default="", max_length=MAX_ORGANISATION, pattern=_ONE_LINE)
    role: Role
    region_code: str | None = Field(default=None, max_length=MAX_REGION_CODE, pattern=_ONE_LINE)


class Correction(BaseModel):
    """Corrected details; a different address is a different person (cancel, then add)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_ONE_LINE)
    organisation: str = Field(default="", max_length=MAX_ORGANISATION, pattern=_ONE_LINE)
    role: Role


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    over_capacity: bool = Field(
        default=False,
        description="Give the seat even when the event is full (one above its capacity)",
    )


class PersonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PersonExport(BaseModel):
    """Everything the platform holds about an address: this service's registrations, and
    what notifications (newsletter, e-mails) and analytics (watching, attendance,
    certificates) hold."""

    email: str
    exported_at: datetime
    registrations: list[dict[str, Any]]
    privacy_statement_version: str = ""
    notifications: dict[str, Any] | None = None
    analytics: dict[str, Any] | None = None


class PersonErasure(BaseModel):
    person_key: str = Field(description="The address as the keyed hash every service erases by")
    erased_registrations: list[uuid.UUID]


class Problem(BaseModel):
    detail: str
