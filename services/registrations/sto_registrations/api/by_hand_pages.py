"""Organiser pages for what is done to registrations by hand (issue #16): the form on an
event's attendee page adds a person; each registration's own page corrects its details,
cancels it, moves it from the waiting list, sends the confirmation again or undoes its
check-in. MANAGE_REGISTRATIONS for an event in the organiser's scope; the use cases audit.

No JavaScript: every action is a form with the CSRF token; a refusal shows the page again
with the reason and what was typed (422 for the input, 409 or 410 for the event's state).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.organiser_pages import DONE, attendee_page
from sto_registrations.api.pages import STATUS_LABELS, csrf_ok, expired_form, message_page, render
from sto_registrations.domain import (
    MAX_NAME,
    MAX_ORGANISATION,
    ROLES,
    WEBINAR,
    ActionRefused,
    Applicant,
    SignUpRefused,
)
from sto_registrations.service import EntryInvalid, RegistrationsService, RegistrationUnknown
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import needs_page
from stolive_shared.pages import base_path

router = APIRouter(
    prefix="/organisator/evenementen/{event_id}/aanmeldingen", include_in_schema=False
)

Manager = Annotated[Organiser, needs_page(Capability.MANAGE_REGISTRATIONS, event=True)]


def _text(form: FormData, key: str, limit: int = 300) -> str:
    """A text field, cut at a bound (the validation then reports it as too long)."""
    return str(form.get(key, ""))[:limit]


@router.post("")
async def add(event_id: uuid.UUID, request: Request, service: ServiceDep, who: Manager) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    entry = {
        key: _text(form, key, 60 if key in ("role", "region_code") else 300)
        for key in ("name", "email", "organisation", "role", "region_code")
    }
    applicant = Applicant(
        name=entry["name"],
        email=entry["email"].strip(),
        organisation=entry["organisation"],
        role=entry["role"],
        region_code=entry["region_code"] or None,
    )
    try:
        added = await service.add_by_hand(event_id, applicant, who)
    except EntryInvalid as invalid:
        return await attendee_page(
            request, service, who, event_id, status_code=422, entry=entry, errors=invalid.problems
        )
    except (ActionRefused, SignUpRefused) as refused:
        return await attendee_page(
            request,
            service,
            who,
            event_id,
            status_code=refused.status,
            entry=entry,
            refused=str(refused),
        )
    return RedirectResponse(
        f"{base_path(request)}/organisator/evenementen/{event_id}?gedaan=toegevoegd#r-{added.id}",
        status_code=303,
    )


async def registration_page(
    request: Request,
    service: RegistrationsService,
    who: Organiser,
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    *,
    status_code: int = 200,
    correction: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    refused: str = "",
) -> HTMLResponse:
    """One registration with what can be done to it (``correction``: the details as typed,
    shown again with ``errors``; ``refused``: why the last action could not be done)."""
    try:
        registration, event = await service.registration_of_event(event_id, registration_id)
    except RegistrationUnknown:
        return message_page(
            request, "Niet gevonden", "Deze aanmelding bestaat niet.", 404, organiser=who
        )
    applicant = registration.applicant
    counts = await service.counts(event_id)
    return render(
        request,
        "organiser_registration.html",
        status_code,
        organiser=who,
        event=event,
        registration=registration,
        status_label=STATUS_LABELS[registration.status],
        role_label=ROLES.get(applicant.role, applicant.role),
        roles=ROLES,
        position=await service.waitlist_position(registration)
        if registration.status == "waitlisted"
        else None,
        full=event.capacity is not None and counts["confirmed"] >= event.capacity,
        physical=event.kind != WEBINAR,
        correction=correction
        or {"name": applicant.name, "organisation": applicant.organisation, "role": applicant.role},
        errors=errors or {},
        refused=refused,
        done=DONE.get(request.query_params.get("gedaan", ""), ""),
        limits={"name": MAX_NAME, "organisation": MAX_ORGANISATION},
    )


@router.get("/{registration_id}", response_class=HTMLResponse)
async def registration(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: Manager,
) -> HTMLResponse:
    return await registration_page(request, service, who, event_id, registration_id)


async def _act(
    request: Request,
    service: RegistrationsService,
    who: Organiser,
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    done: str,
    action: Callable[[FormData], Awaitable[Any]],
) -> Response:
    """One action's form: the CSRF check, the action, then back to the registration's page
    (with what was done, or why not)."""
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        await action(form)
    except RegistrationUnknown:
        return message_page(
            request, "Niet gevonden", "Deze aanmelding bestaat niet.", 404, organiser=who
        )
    except ActionRefused as refused:
        return await registration_page(
            request, service, who, event_id, registration_id, status_code=409, refused=str(refused)
        )
    return RedirectResponse(
        f"{base_path(request)}/organisator/evenementen/{event_id}/aanmeldingen/"
        f"{registration_id}?gedaan={done}",
        status_code=303,
    )


@router.post("/{registration_id}/corrigeren")
async def correct(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: Manager,
) -> Response:
    form = await request.form()
    correction = {
        "name": _text(form, "name"),
        "organisation": _text(form, "organisation"),
        "role": _text(form, "role", 60),
    }

    async def corrected(_form: FormData) -> None:
        await service.correct_by_hand(event_id, registration_id, who, **correction)

    try:
        return await _act(
            request, service, who, event_id, registration_id, "gecorrigeerd", corrected
        )
    except EntryInvalid as invalid:
        return await registration_page(
            request,
            service,
            who,
            event_id,
            registration_id,
            status_code=422,
            correction=correction,
            errors=invalid.problems,
        )


@router.post("/{registration_id}/annuleren")
async def cancel(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: Manager,
) -> Response:
    form = await request.form()
    if csrf_ok(request, form.get("csrf_token")) and form.get("zeker") != "ja":
        return await registration_page(
            request,
            service,
            who,
            event_id,
            registration_id,
            status_code=422,
            errors={"zeker": "Vink aan dat je deze aanmelding echt wilt annuleren."},
        )

    async def cancelled(_form: FormData) -> None:
        await service.cancel_by_hand(event_id, registration_id, who)

    return await _act(request, service, who, event_id, registration_id, "geannuleerd", cancelled)


@router.post("/{registration_id}/plaatsen")
async def promote(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: Manager,
) -> Response:
    async def promoted(form: FormData) -> None:
        await service.promote_by_hand(
            event_id, registration_id, who, over_capacity=form.get("boven_capaciteit") == "ja"
        )

    return await _act(request, service, who, event_id, registration_id, "geplaatst", promoted)


@router.post("/{registration_id}/bevestiging")
async def resend(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: Manager,
) -> Response:
    async def resent(_form: FormData) -> None:
        await service.resend_confirmation(event_id, registration_id, who)

    return await _act(request, service, who, event_id, registration_id, "verstuurd", resent)


@router.post("/{registration_id}/inchecken-ongedaan")
async def undo_check_in(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: Manager,
) -> Response:
    async def undone(_form: FormData) -> None:
        await service.undo_check_in(event_id, registration_id, who)

    return await _act(request, service, who, event_id, registration_id, "uitgecheckt", undone)
