"""JSON API for the public: sign up (with colleagues), look up, cancel, counts per event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from starlette.types import Scope

from sto_registrations.api.abuse import SignUpGuard
from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.schemas import (
    ColleagueReceived,
    Counts,
    FormToken,
    Problem,
    RegistrationPublic,
    SignUp,
    SignUpReceived,
)
from sto_registrations.api.schools import at_school
from sto_registrations.domain import Applicant, Registration
from sto_registrations.schools import chosen_code
from sto_registrations.service import RegistrationsService, SignUpResult
from stolive_shared.events_client import SchoolDirectory
from stolive_shared.organisers.web import PUBLIC

router = APIRouter(prefix="/api", tags=["registrations"], dependencies=[PUBLIC])

_PROBLEMS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "Evenement of aanmelding niet gevonden"},
    409: {"model": Problem, "description": "Vol, en er is geen wachtlijst"},
    410: {"model": Problem, "description": "Aanmelden gesloten, evenement geannuleerd of voorbij"},
    429: {"model": Problem, "description": "Te veel aanmeldingen vanaf dit adres"},
}


def public(
    registration: Registration, position: int | None = None, join_url: str | None = None
) -> RegistrationPublic:
    return RegistrationPublic(
        id=registration.id,
        event_id=registration.event_id,
        status=registration.status,
        name=registration.applicant.name,
        created_at=registration.created_at,
        waitlist_position=position,
        join_url=join_url,
    )


RECEIVED = (
    "Je aanmelding is ontvangen. Kijk in je mail: daar staat of je bent aangemeld of op de"
    " wachtlijst staat, met je persoonlijke link."
)


@router.post(
    "/events/{event_id}/registrations",
    status_code=202,
    response_model=SignUpReceived,
    summary="Sign up for an event, with up to 10 colleagues of the same school",
    description="Confirmed while seats are free, else waitlisted (or 409 without a waiting"
    " list). Every sign-up gets the same answer, whether or not the address was registered"
    " already: each person hears what came of it by e-mail, with their own links (a new"
    ' sign-up\'s confirmation, or "Je was al aangemeld"). No token is ever returned here.',
    responses=_PROBLEMS,
)
async def sign_up(
    event_id: uuid.UUID, body: SignUp, request: Request, service: ServiceDep
) -> Response:
    # The sign-up fast path (``fast_sign_up``) answers well-formed JSON sign-ups before they
    # reach this route; it comes here for everything else, so FastAPI answers those as always.
    parts = request.app.state.parts
    outcome = await signed_up(
        service, parts.sign_up_guard, parts.schools, request.scope, event_id, body
    )
    return Response(outcome, status_code=202, media_type="application/json")


async def signed_up(
    service: RegistrationsService,
    guard: SignUpGuard,
    schools: SchoolDirectory,
    scope: Scope,
    event_id: uuid.UUID,
    body: SignUp,
) -> bytes:
    """Sign up the body's person and colleagues (at the school site chosen, checked against
    the list first); the 202 answer's JSON."""
    applicants = [
        Applicant(
            name=body.name,
            email=body.email,
            organisation=body.organisation,
            role=body.role,
            region_code=body.region_code,
            profiles=tuple(body.profiles),
            newsletter=body.newsletter,
        ),
        *(
            Applicant(
                name=colleague.name,
                email=colleague.email,
                organisation=body.organisation,
                role=colleague.role,
                region_code=body.region_code,
            )
            for colleague in body.colleagues
        ),
    ]
    applicants = await at_school(schools, applicants, chosen_code(body.school_code))
    await guard.admit(scope, event_id, body.form_token, cost=1 + len(body.colleagues))
    if len(applicants) == 1:
        answers: list[SignUpResult | Exception] = [await service.sign_up(event_id, applicants[0])]
    else:
        answers = await service.sign_up_group(event_id, applicants)
    outcome = SignUpReceived(
        event_id=event_id,
        received=len(applicants),
        message=RECEIVED,
        colleagues=[
            ColleagueReceived(
                email=colleague.email.strip().lower(),
                refused=str(answer) if isinstance(answer, Exception) else None,
            )
            for colleague, answer in zip(body.colleagues, answers[1:], strict=True)
        ],
    )
    # Serialised here: the busiest route of the platform skips FastAPI's second validation.
    return outcome.model_dump_json().encode()


@router.get(
    "/events/{event_id}/form-token",
    response_model=FormToken,
    summary="A form token for one sign-up form (the API's bot guard)",
    description="Fetch one when the form is shown; send it with the sign-up as `form_token`."
    " It can be used from two seconds after it was fetched until 30 minutes after.",
    responses=_PROBLEMS,
)
async def form_token(event_id: uuid.UUID, request: Request, service: ServiceDep) -> FormToken:
    await service.event_terms(event_id)  # 404 for an event nobody can sign up for
    tokens = request.app.state.parts.sign_up_guard.tokens
    now = datetime.now(UTC)
    return FormToken(
        form_token=tokens.issue(event_id),
        usable_from=now + timedelta(seconds=tokens.min_age_s),
        expires_at=now + timedelta(seconds=tokens.max_age_s),
    )


@router.get(
    "/registrations/{token}",
    response_model=RegistrationPublic,
    summary="One registration, by its personal token",
    responses=_PROBLEMS,
)
async def get_registration(token: str, service: ServiceDep) -> RegistrationPublic:
    registration, terms = await service.by_personal_link(token)
    position = (
        await service.waitlist_position(registration)
        if registration.status == "waitlisted"
        else None
    )
    return public(registration, position, service.join_url(registration, terms))


@router.delete(
    "/registrations/{token}",
    response_model=RegistrationPublic,
    summary="Cancel, or leave the waiting list, by the personal token",
    responses=_PROBLEMS,
)
async def cancel_registration(token: str, service: ServiceDep) -> RegistrationPublic:
    before, _ = await service.by_personal_link(token)
    reason = "left_waitlist" if before.status == "waitlisted" else "cancelled_by_registrant"
    await service.cancel(before.id, reason)
    registration, _ = await service.get(before.id)
    return public(registration)


@router.get(
    "/events/{event_id}/counts",
    response_model=Counts,
    summary="Registrations by status",
    responses=_PROBLEMS,
)
async def counts(event_id: uuid.UUID, service: ServiceDep) -> Counts:
    await service.event_terms(event_id)
    return Counts(event_id=event_id, **await service.counts(event_id))
