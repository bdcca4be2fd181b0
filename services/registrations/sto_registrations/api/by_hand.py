"""JSON API for what organisers do to an event's registrations by hand (issue #16): add a
person, cancel, move one from the waiting list, correct details, send the confirmation again,
undo a check-in. Each needs MANAGE_REGISTRATIONS for an event in the organiser's scope; each
is audited, and causes the same messages (and e-mails) as the person's own action would.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import Response

from sto_registrations.api.attendees import public_attendee
from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.organisers import AUTH_ANSWERS
from sto_registrations.api.schemas import (
    AttendeePublic,
    Correction,
    HandSignUp,
    Problem,
    Promotion,
)
from sto_registrations.domain import WEBINAR, Applicant, Registration
from sto_registrations.service import RegistrationsService
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import needs

router = APIRouter(prefix="/api/organiser/events/{event_id}/registrations", tags=["organisers"])

Manager = Annotated[Organiser, needs(Capability.MANAGE_REGISTRATIONS, event=True)]
_REFUSED: dict[int | str, dict[str, object]] = {
    **AUTH_ANSWERS,
    409: {"model": Problem, "description": "Kan nu niet (de reden staat erbij)"},
}


async def _answer(
    service: RegistrationsService, event_id: uuid.UUID, registration: Registration
) -> AttendeePublic:
    terms = await service.event_terms(event_id)
    physical = terms.kind != WEBINAR
    return public_attendee(
        registration, service.check_in_url(registration.id) if physical else None
    )


@router.post(
    "",
    status_code=201,
    response_model=AttendeePublic,
    summary="Sign a person up by hand: a seat if free, else the waiting list; they are e-mailed",
    responses={**_REFUSED, 410: {"model": Problem, "description": "Geannuleerd of voorbij"}},
)
async def add_registration(
    event_id: uuid.UUID, body: HandSignUp, service: ServiceDep, who: Manager
) -> AttendeePublic:
    added = await service.add_by_hand(
        event_id,
        Applicant(
            name=body.name,
            email=body.email,
            organisation=body.organisation,
            role=body.role,
            region_code=body.region_code,
        ),
        who,
    )
    return await _answer(service, event_id, added)


@router.post(
    "/{registration_id}/cancel",
    response_model=AttendeePublic,
    summary="Cancel a registration (the person is e-mailed; a freed seat goes to the waiting list)",
    responses=_REFUSED,
)
async def cancel_registration(
    event_id: uuid.UUID, registration_id: uuid.UUID, service: ServiceDep, who: Manager
) -> AttendeePublic:
    cancelled = await service.cancel_by_hand(event_id, registration_id, who)
    return await _answer(service, event_id, cancelled)


@router.post(
    "/{registration_id}/promote",
    response_model=AttendeePublic,
    summary="Move a person from the waiting list into a seat (above capacity only if asked)",
    responses=_REFUSED,
)
async def promote_registration(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    service: ServiceDep,
    who: Manager,
    body: Annotated[Promotion | None, Body()] = None,
) -> AttendeePublic:
    over_capacity = body.over_capacity if body is not None else False
    promoted = await service.promote_by_hand(
        event_id, registration_id, who, over_capacity=over_capacity
    )
    return await _answer(service, event_id, promoted)


@router.patch(
    "/{registration_id}",
    response_model=AttendeePublic,
    summary="Correct a name, school or role (a different address: cancel, then add)",
    responses=_REFUSED,
)
async def correct_registration(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    body: Correction,
    service: ServiceDep,
    who: Manager,
) -> AttendeePublic:
    corrected = await service.correct_by_hand(
        event_id,
        registration_id,
        who,
        name=body.name,
        organisation=body.organisation,
        role=body.role,
    )
    return await _answer(service, event_id, corrected)


@router.post(
    "/{registration_id}/resend-confirmation",
    status_code=202,
    response_class=Response,
    summary="E-mail the person their status and personal links again",
    responses={**_REFUSED, 202: {"description": "Het bericht is onderweg"}},
)
async def resend_confirmation(
    event_id: uuid.UUID, registration_id: uuid.UUID, service: ServiceDep, who: Manager
) -> Response:
    await service.resend_confirmation(event_id, registration_id, who)
    return Response(status_code=202)


@router.delete(
    "/{registration_id}/check-in",
    response_model=AttendeePublic,
    summary="Undo a check-in made by mistake",
    responses=_REFUSED,
)
async def undo_check_in(
    event_id: uuid.UUID, registration_id: uuid.UUID, service: ServiceDep, who: Manager
) -> AttendeePublic:
    undone = await service.undo_check_in(event_id, registration_id, who)
    return await _answer(service, event_id, undone)
