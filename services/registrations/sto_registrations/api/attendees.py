"""How organisers see registrations: list rows, filters, and the CSV for Dutch Excel. The
school column names the chosen school site by its label in the list of sites (``labels``:
code -> label), else the school as typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sto_registrations.api.schemas import AttendeePublic
from sto_registrations.domain import ROLES, Registration, is_single_line
from stolive_shared.spreadsheets import spreadsheet_csv
from stolive_shared.templating import local_time

STATUS_FILTERS = {"confirmed": "Aangemeld", "waitlisted": "Wachtlijst", "cancelled": "Geannuleerd"}
_CSV_HEADER = [
    "Naam", "E-mailadres", "School of organisatie", "Rol", "Regio", "Profielen", "Status",
    "Aangemeld op", "Ingecheckt op", "Nieuwsbrief",
]  # fmt: skip


@dataclass(frozen=True)
class AttendeeFilter:
    status: str | None = None
    region_code: str | None = None
    role: str | None = None

    @classmethod
    def of(cls, status: str | None, region: str | None, role: str | None) -> AttendeeFilter:
        """Unknown values are ignored rather than refused: a stale bookmark still works."""
        return cls(
            status=status if status in STATUS_FILTERS else None,
            region_code=region[:40] if region and is_single_line(region) else None,
            role=role if role in ROLES else None,
        )


def school_of(registration: Registration, labels: Mapping[str, str]) -> str:
    """What the school column says: the chosen site's label (the site's current name), else
    what was typed; nothing once the person's data is removed."""
    applicant = registration.applicant
    if registration.erased:
        return ""
    code = applicant.school_code
    return labels.get(code, applicant.organisation) if code else applicant.organisation


def public_attendee(
    registration: Registration,
    check_in_url: str | None,
    labels: Mapping[str, str] | None = None,
) -> AttendeePublic:
    applicant = registration.applicant
    return AttendeePublic(
        id=registration.id,
        status=registration.status,
        name=applicant.name,
        email=applicant.email,
        organisation=applicant.organisation,
        school_code=applicant.school_code,
        school=school_of(registration, labels or {}),
        role=applicant.role,
        region_code=applicant.region_code,
        profiles=list(applicant.profiles),
        newsletter=applicant.newsletter,
        created_at=registration.created_at,
        checked_in_at=registration.checked_in_at,
        group_id=registration.group_id,
        erased=registration.erased,
        check_in_url=check_in_url,
    )


def attendees_csv(registrations: list[Registration], labels: Mapping[str, str]) -> bytes:
    """For Dutch Excel, formulas neutralised (``stolive_shared.spreadsheets``)."""
    return spreadsheet_csv(
        _CSV_HEADER,
        (
            [
                registration.applicant.name,
                registration.applicant.email,
                school_of(registration, labels),
                ROLES.get(registration.applicant.role, registration.applicant.role),
                registration.applicant.region_code,
                ", ".join(registration.applicant.profiles),
                STATUS_FILTERS[registration.status],
                local_time(registration.created_at, "%d-%m-%Y %H:%M"),
                local_time(registration.checked_in_at, "%d-%m-%Y %H:%M")
                if registration.checked_in_at
                else "",
                "ja" if registration.applicant.newsletter else "nee",
            ]
            for registration in registrations
        ),
    )
