"""How organisers see registrations: list rows, filters, and the CSV for Dutch Excel."""

from __future__ import annotations

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


def public_attendee(registration: Registration, check_in_url: str | None) -> AttendeePublic:
    applicant = registration.applicant
    return AttendeePublic(
        id=registration.id,
        status=registration.status,
        name=applicant.name,
        email=applicant.email,
        organisation=applicant.organisation,
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


def attendees_csv(registrations: list[Registration]) -> bytes:
    """For Dutch Excel, formulas neutralised (``stolive_shared.spreadsheets``)."""
    return spreadsheet_csv(
        _CSV_HEADER,
        (
            [
                registration.applicant.name,
                registration.applicant.email,
                registration.applicant.organisation,
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
