"""How organisers see registrations: list rows, filters, and the CSV for Dutch Excel."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sto_registrations.api.schemas import AttendeePublic
from sto_registrations.domain import ROLES, is_single_line, spreadsheet_safe
from sto_registrations.repository import Registration
from stolive_shared.templating import local_time

STATUS_FILTERS = {"confirmed": "Aangemeld", "waitlisted": "Wachtlijst", "cancelled": "Geannuleerd"}
# Excel in a Dutch locale splits on ';' and reads UTF-8 only after a byte-order mark.
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
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
    """UTF-8 with BOM, ';' between fields, CRLF lines, formulas neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for registration in registrations:
        applicant = registration.applicant
        writer.writerow(
            [
                spreadsheet_safe(applicant.name),
                spreadsheet_safe(applicant.email),
                spreadsheet_safe(applicant.organisation),
                ROLES.get(applicant.role, applicant.role),
                spreadsheet_safe(applicant.region_code or ""),
                ", ".join(applicant.profiles),
                STATUS_FILTERS[registration.status],
                local_time(registration.created_at, "%d-%m-%Y %H:%M"),
                local_time(registration.checked_in_at, "%d-%m-%Y %H:%M")
                if registration.checked_in_at
                else "",
                "ja" if applicant.newsletter else "nee",
            ]
        )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")
