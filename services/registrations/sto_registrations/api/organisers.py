"""JSON API for organisers: attendee lists with filters, counts, CSV, check-in, privacy.

Every route needs an organiser (the site-wide session cookie or a bearer token) whose role
may do it, for an event in their scope (``stolive_shared.organisers``): the lists need
VIEW_REGISTRATIONS, a check-in CHECK_IN (its event's scope checked once the registration is
looked up), the privacy requests PERSONAL_DATA. The CSV, check-ins and privacy requests are
audited; a refusal is too.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sto_registrations.api.attendees import (
    AttendeeFilter,
    attendees_csv,
    public_attendee,
)
from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.schemas import (
    AttendeeList,
    AttendeePublic,
    Counts,
    PersonErasure,
    PersonExport,
    PersonRequest,
    Problem,
)
from sto_registrations.api.schools import school_directory, school_labels
from sto_registrations.domain import WEBINAR, EventTerms, Registration
from sto_registrations.service import RegistrationsService
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs
from stolive_shared.spreadsheets import CSV_MEDIA_TYPE

router = APIRouter(prefix="/api/organiser", tags=["organisers"])

AUTH_ANSWERS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Inloggen als organisator is nodig"},
    403: {
        "model": Problem,
        "description": "Geen toegang: onbekende sleutel, of buiten rol of regio's van het account",
    },
    404: {"model": Problem, "description": "Niet gevonden"},
}

Viewer = Annotated[Organiser, needs(Capability.VIEW_REGISTRATIONS, event=True)]
CheckInStaff = Annotated[Organiser, needs(Capability.CHECK_IN)]
PrivacyOfficer = Annotated[Organiser, needs(Capability.PERSONAL_DATA)]


@dataclass(frozen=True)
class FilteredAttendees:
    terms: EventTerms
    attendees: list[Registration]
    chosen: AttendeeFilter


async def filtered_attendees(
    event_id: uuid.UUID,
    service: ServiceDep,
    status: str | None = None,
    region: str | None = None,
    role: str | None = None,
) -> FilteredAttendees:
    """An event's attendees as the list's filters choose: one place for the list and its CSV.
    Routes declare the organiser before this, so no one unknown reaches the database."""
    terms = await service.event_terms(event_id)
    chosen = AttendeeFilter.of(status, region, role)
    found = await service.attendees(
        event_id, status=chosen.status, region_code=chosen.region_code, role=chosen.role
    )
    return FilteredAttendees(terms, found, chosen)


ChosenAttendees = Annotated[FilteredAttendees, Depends(filtered_attendees)]


@router.get(
    "/events/{event_id}/attendees",
    response_model=AttendeeList,
    summary="Attendee list of an event, with counts; filter by status, region and role",
    responses=AUTH_ANSWERS,
)
async def attendee_list(
    event_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    _who: Viewer,
    chosen: ChosenAttendees,
) -> AttendeeList:
    physical = chosen.terms.kind != WEBINAR
    labels = _labels(request, chosen.attendees)
    return AttendeeList(
        event_id=event_id,
        counts=Counts(event_id=event_id, **await service.counts(event_id)),
        attendees=[
            public_attendee(r, service.check_in_url(r.id) if physical else None, labels)
            for r in chosen.attendees
        ],
    )


def _labels(request: Request, attendees: list[Registration]) -> dict[str, str]:
    return school_labels(school_directory(request), (r.applicant.school_code for r in attendees))


@router.get(
    "/events/{event_id}/attendees.csv",
    summary="The attendee list as CSV for Dutch Excel (UTF-8 with BOM, ';' separated)",
    response_class=Response,
    responses={**AUTH_ANSWERS, 200: {"content": {"text/csv": {}}}},
)
async def attendee_csv(
    event_id: uuid.UUID,
    request: Request,
    who: Viewer,
    chosen: ChosenAttendees,
) -> Response:
    slug = re.sub(r"[^a-z0-9]+", "-", chosen.terms.title.lower()).strip("-")[:60] or "evenement"
    body = attendees_csv(chosen.attendees, _labels(request, chosen.attendees))
    await access_of(request).audit.record(
        who,
        "attendee_csv",
        event_id=event_id,
        detail={
            "rows": len(chosen.attendees),
            **{key: value for key, value in vars(chosen.chosen).items() if value},
        },
    )
    return Response(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="deelnemers-{slug}.csv"',
            "Cache-Control": "no-store",
        },
    )


async def checked_in(
    request: Request,
    service: RegistrationsService,
    who: Organiser,
    registration_id: uuid.UUID,
    via: str,
) -> Registration:
    """Check in once the registration's event is known to be in ``who``'s scope."""
    registration, _ = await service.get(registration_id)
    await access_of(request).check_event(request, who, registration.event_id)
    return await service.check_in(registration_id, who, via=via)


@router.post(
    "/registrations/{registration_id}/check-in",
    response_model=AttendeePublic,
    summary="Check a confirmed person in at a physical meeting (from the list)",
    responses={**AUTH_ANSWERS, 409: {"model": Problem, "description": "Inchecken kan niet"}},
)
async def check_in(
    registration_id: uuid.UUID, request: Request, service: ServiceDep, who: CheckInStaff
) -> AttendeePublic:
    registration = await checked_in(request, service, who, registration_id, "api")
    return public_attendee(registration, service.check_in_url(registration.id))


@router.post(
    "/check-ins/{token}",
    response_model=AttendeePublic,
    summary="Check in by the token in the QR code of the confirmation",
    responses={**AUTH_ANSWERS, 409: {"model": Problem, "description": "Inchecken kan niet"}},
)
async def check_in_by_token(
    token: str, request: Request, service: ServiceDep, who: CheckInStaff
) -> AttendeePublic:
    registration_id = service.registration_for_check_in_token(token)
    registration = await checked_in(request, service, who, registration_id, "qr")
    return public_attendee(registration, service.check_in_url(registration.id))


@router.post(
    "/privacy/export",
    response_model=PersonExport,
    summary="Everything held about an email address",
    responses=AUTH_ANSWERS,
)
async def privacy_export(
    body: PersonRequest, request: Request, service: ServiceDep, who: PrivacyOfficer
) -> PersonExport:
    export = PersonExport.model_validate(await service.full_export(str(body.email)))
    await audit_export(request, service, who, str(body.email), len(export.registrations))
    return export


async def audit_export(
    request: Request, service: RegistrationsService, who: Organiser, email: str, found: int
) -> None:
    """The export in the audit log, the person named by the keyed hash of the address."""
    await access_of(request).audit.record(
        who,
        "export",
        subject=f"person:{service.person_reference(email)}",
        detail={"registrations": found},
    )


@router.post(
    "/privacy/erase",
    response_model=PersonErasure,
    summary="Erase a person: personal fields removed, counts kept; other services are told",
    responses=AUTH_ANSWERS,
)
async def privacy_erase(
    body: PersonRequest, service: ServiceDep, who: PrivacyOfficer
) -> PersonErasure:
    erased = await service.erase_person(str(body.email), by=who)
    return PersonErasure(
        person_key=service.person_reference(str(body.email)), erased_registrations=erased
    )
