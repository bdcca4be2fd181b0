"""JSON API for organisers: attendee lists with filters, counts, CSV, check-in, privacy.

Every route needs an organiser: the site-wide session cookie or a bearer token (see
``stolive_shared.organisers``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from sto_registrations.api.attendees import (
    AttendeeFilter,
    attendees_csv,
    public_attendee,
)
from sto_registrations.api.deps import OrganiserDep, ServiceDep
from sto_registrations.api.schemas import (
    AttendeeList,
    AttendeePublic,
    Counts,
    PersonErasure,
    PersonExport,
    PersonRequest,
    Problem,
)
from sto_registrations.domain import WEBINAR, EventTerms, Registration
from stolive_shared.spreadsheets import CSV_MEDIA_TYPE

router = APIRouter(prefix="/api/organiser", tags=["organisers"])

_AUTH: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Inloggen als organisator is nodig"},
    403: {"model": Problem, "description": "Deze sleutel geeft geen toegang"},
    404: {"model": Problem, "description": "Niet gevonden"},
}


@dataclass(frozen=True)
class FilteredAttendees:
    terms: EventTerms
    attendees: list[Registration]


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
    return FilteredAttendees(terms, found)


ChosenAttendees = Annotated[FilteredAttendees, Depends(filtered_attendees)]


@router.get(
    "/events/{event_id}/attendees",
    response_model=AttendeeList,
    summary="Attendee list of an event, with counts; filter by status, region and role",
    responses=_AUTH,
)
async def attendee_list(
    event_id: uuid.UUID,
    service: ServiceDep,
    _organiser: OrganiserDep,
    chosen: ChosenAttendees,
) -> AttendeeList:
    physical = chosen.terms.kind != WEBINAR
    return AttendeeList(
        event_id=event_id,
        counts=Counts(event_id=event_id, **await service.counts(event_id)),
        attendees=[
            public_attendee(r, service.check_in_url(r.id) if physical else None)
            for r in chosen.attendees
        ],
    )


@router.get(
    "/events/{event_id}/attendees.csv",
    summary="The attendee list as CSV for Dutch Excel (UTF-8 with BOM, ';' separated)",
    response_class=Response,
    responses={**_AUTH, 200: {"content": {"text/csv": {}}}},
)
async def attendee_csv(_organiser: OrganiserDep, chosen: ChosenAttendees) -> Response:
    slug = re.sub(r"[^a-z0-9]+", "-", chosen.terms.title.lower()).strip("-")[:60] or "evenement"
    return Response(
        attendees_csv(chosen.attendees),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="deelnemers-{slug}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/registrations/{registration_id}/check-in",
    response_model=AttendeePublic,
    summary="Check a confirmed person in at a physical meeting (from the list)",
    responses={**_AUTH, 409: {"model": Problem, "description": "Inchecken kan niet"}},
)
async def check_in(
    registration_id: uuid.UUID, service: ServiceDep, organiser: OrganiserDep
) -> AttendeePublic:
    registration = await service.check_in(registration_id, organiser)
    return public_attendee(registration, service.check_in_url(registration.id))


@router.post(
    "/check-ins/{token}",
    response_model=AttendeePublic,
    summary="Check in by the token in the QR code of the confirmation",
    responses={**_AUTH, 409: {"model": Problem, "description": "Inchecken kan niet"}},
)
async def check_in_by_token(
    token: str, service: ServiceDep, organiser: OrganiserDep
) -> AttendeePublic:
    registration_id = service.registration_for_check_in_token(token)
    registration = await service.check_in(registration_id, organiser)
    return public_attendee(registration, service.check_in_url(registration.id))


@router.post(
    "/privacy/export",
    response_model=PersonExport,
    summary="Everything held about an email address",
    responses=_AUTH,
)
async def privacy_export(
    body: PersonRequest, service: ServiceDep, _organiser: OrganiserDep
) -> PersonExport:
    return PersonExport.model_validate(await service.full_export(str(body.email)))


@router.post(
    "/privacy/erase",
    response_model=PersonErasure,
    summary="Erase a person: personal fields removed, counts kept; other services are told",
    responses=_AUTH,
)
async def privacy_erase(
    body: PersonRequest, service: ServiceDep, _organiser: OrganiserDep
) -> PersonErasure:
    erased = await service.erase_person(str(body.email))
    return PersonErasure(
        person_key=service.person_reference(str(body.email)), erased_registrations=erased
    )
