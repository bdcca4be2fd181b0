"""Organiser pages (Dutch, no JavaScript): attendee lists, check-in by list or by the QR code,
and the privacy requests.

Who sees what follows the organiser's role and scope (``stolive_shared.organisers``): the
event list and an event's attendee page need CHECK_IN (every role with VIEW_REGISTRATIONS has
it too), and show only events in the organiser's scope; check-in staff, without
VIEW_REGISTRATIONS, see what checking in needs (no addresses, no CSV, no management). The
privacy requests need PERSONAL_DATA. What changes anything is audited.

The QR code on a confirmation holds a check-in URL. An organiser scans it with a phone's
camera and opens it in the browser where they are logged in; the page shows who it is and a
button, so a link preview or a scanner that fetches the URL never checks anyone in.
"""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sto_registrations.api.attendees import STATUS_FILTERS, AttendeeFilter, school_of
from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.organisers import audit_export
from sto_registrations.api.pages import (
    STATUS_LABELS,
    csrf_ok,
    expired_form,
    message_page,
    render,
)
from sto_registrations.api.schools import school_directory, school_labels
from sto_registrations.domain import MAX_EMAIL, MAX_NAME, MAX_ORGANISATION, ROLES, WEBINAR
from sto_registrations.service import (
    CheckInRefused,
    EventUnknown,
    RegistrationsService,
    RegistrationUnknown,
)
from stolive_shared.events_client import RegionDirectory
from stolive_shared.internal import ServiceUnavailable
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs_page
from stolive_shared.pages import base_path

router = APIRouter(prefix="/organisator", include_in_schema=False)

# Check-in staff have CHECK_IN alone; programme team and regional leaders have it as well as
# VIEW_REGISTRATIONS: so CHECK_IN is "may see registrations at all".
CheckInStaff = Annotated[Organiser, needs_page(Capability.CHECK_IN)]
EventCheckIn = Annotated[Organiser, needs_page(Capability.CHECK_IN, event=True)]
PrivacyOfficer = Annotated[Organiser, needs_page(Capability.PERSONAL_DATA)]

# What the pages say after an action, by the ``gedaan`` query parameter.
DONE = {
    "toegevoegd": "De aanmelding is toegevoegd; de persoon krijgt een e-mail.",
    "geannuleerd": "De aanmelding is geannuleerd; de persoon krijgt een e-mail.",
    "geplaatst": "De persoon heeft een plaats gekregen en krijgt een e-mail.",
    "gecorrigeerd": "De gegevens zijn gecorrigeerd.",
    "verstuurd": "De bevestiging is opnieuw verstuurd.",
    "uitgecheckt": "Het inchecken is ongedaan gemaakt.",
}


@router.get("/", response_class=HTMLResponse)
async def events(request: Request, service: ServiceDep, who: CheckInStaff) -> HTMLResponse:
    listed = await service.all_events(only=await access_of(request).scope.events_in(who))
    counts = {event.id: await service.counts(event.id) for event in listed}
    return render(
        request,
        "organiser_events.html",
        events=listed,
        counts=counts,
        wide=True,
        organiser=who,
    )


async def attendee_page(
    request: Request,
    service: RegistrationsService,
    who: Organiser,
    event_id: uuid.UUID,
    *,
    status_code: int = 200,
    entry: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    refused: str = "",
) -> HTMLResponse:
    """An event's attendees as the filters in the query choose; with the form to add someone
    by hand (``entry``: what was typed, shown again with ``errors`` or ``refused``)."""
    try:
        event = await service.event_terms(event_id)
    except EventUnknown:
        return message_page(
            request, "Niet gevonden", "Dit evenement bestaat niet.", 404, organiser=who
        )
    params = request.query_params
    chosen = AttendeeFilter.of(params.get("status"), params.get("regio"), params.get("rol"))
    found = await service.attendees(
        event_id, status=chosen.status, region_code=chosen.region_code, role=chosen.role
    )
    directory: RegionDirectory = request.app.state.parts.regions
    query = "&".join(
        f"{key}={value}"
        for key, value in (
            ("status", chosen.status),
            ("region", chosen.region_code),
            ("role", chosen.role),
        )
        if value
    )
    return render(
        request,
        "organiser_event.html",
        status_code,
        organiser=who,
        sees_all=who.may(Capability.VIEW_REGISTRATIONS),
        manages=who.may(Capability.MANAGE_REGISTRATIONS),
        event=event,
        attendees=found,
        school=partial(
            school_of,
            labels=school_labels(
                school_directory(request), (r.applicant.school_code for r in found)
            ),
        ),
        counts=await service.counts(event_id),
        chosen=chosen,
        statuses=STATUS_FILTERS,
        status_labels=STATUS_LABELS,
        roles=ROLES,
        regions=await directory.regions(),
        physical=event.kind != WEBINAR,
        csv_url=f"{base_path(request)}/api/organiser/events/{event_id}/attendees.csv"
        + (f"?{query}" if query else ""),
        checked_in=params.get("ingecheckt", ""),
        done=DONE.get(params.get("gedaan", ""), ""),
        entry=entry or {"role": "docent"},
        errors=errors or {},
        refused=refused,
        limits={"name": MAX_NAME, "email": MAX_EMAIL, "organisation": MAX_ORGANISATION},
        wide=True,
    )


@router.get("/evenementen/{event_id}", response_class=HTMLResponse)
async def attendees(
    event_id: uuid.UUID, request: Request, service: ServiceDep, who: EventCheckIn
) -> HTMLResponse:
    return await attendee_page(request, service, who, event_id)


@router.post("/evenementen/{event_id}/inchecken/{registration_id}")
async def check_in_from_list(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    who: EventCheckIn,
) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        await service.registration_of_event(event_id, registration_id)
        registration = await service.check_in(registration_id, who, via="list")
    except RegistrationUnknown:
        return message_page(
            request, "Niet gevonden", "Deze aanmelding bestaat niet.", 404, organiser=who
        )
    except CheckInRefused as refused:
        return message_page(request, "Inchecken niet mogelijk", str(refused), 409, organiser=who)
    back = str(form.get("terug", ""))
    target = back if back.startswith("?") else ""
    separator = "&" if target else "?"
    return RedirectResponse(
        f"{base_path(request)}/organisator/evenementen/{event_id}{target}"
        f"{separator}ingecheckt={registration.id}#r-{registration.id}",
        status_code=303,
    )


async def _check_in_page(
    request: Request, token: str, service: ServiceDep, *, who: Organiser, confirm: bool
) -> HTMLResponse:
    try:
        registration_id = service.registration_for_check_in_token(token)
        registration, event = await service.get(registration_id)
    except RegistrationUnknown:
        return message_page(
            request, "Onbekende QR-code", "Deze QR-code is niet geldig.", 404, organiser=who
        )
    await access_of(request).check_event(request, who, registration.event_id)
    problem = None
    just_checked_in = False
    if confirm:
        try:
            before = registration.checked_in_at
            registration = await service.check_in(registration_id, who, via="qr")
            just_checked_in = before is None
        except CheckInRefused as refused:
            problem = str(refused)
    return render(
        request,
        "organiser_check_in.html",
        409 if problem else 200,
        organiser=who,
        registration=registration,
        event=event,
        token=token,
        problem=problem,
        just_checked_in=just_checked_in,
        status_label=STATUS_LABELS[registration.status],
        role_label=ROLES.get(registration.applicant.role, registration.applicant.role),
    )


@router.get("/inchecken/{token}", response_class=HTMLResponse)
async def check_in_by_qr(
    token: str, request: Request, service: ServiceDep, who: CheckInStaff
) -> HTMLResponse:
    return await _check_in_page(request, token, service, who=who, confirm=False)


@router.post("/inchecken/{token}", response_class=HTMLResponse)
async def confirm_check_in_by_qr(
    token: str, request: Request, service: ServiceDep, who: CheckInStaff
) -> HTMLResponse:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    return await _check_in_page(request, token, service, who=who, confirm=True)


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, who: PrivacyOfficer) -> HTMLResponse:
    return render(request, "organiser_privacy.html", erased=None, email="", organiser=who)


@router.post("/privacy")
async def privacy_request(request: Request, service: ServiceDep, who: PrivacyOfficer) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    email = str(form.get("email", ""))[:254].strip()

    def again(status_code: int, error: str) -> HTMLResponse:
        return render(
            request,
            "organiser_privacy.html",
            status_code,
            erased=None,
            email=email,
            error=error,
            organiser=who,
        )

    if "@" not in email:
        return again(422, "Vul het e-mailadres in waar het verzoek over gaat.")
    if form.get("actie") == "verwijderen":
        if form.get("zeker") != "ja":
            return again(422, "Vink aan dat je deze persoon echt wilt verwijderen.")
        erased = await service.erase_person(email, by=who)
        return render(
            request,
            "organiser_privacy.html",
            erased=len(erased),
            email="",
            reference=service.person_reference(email)[:12],
            organiser=who,
        )
    try:
        export: dict[str, Any] = await service.full_export(email)
    except ServiceUnavailable:
        return again(503, "Niet alle diensten antwoorden nu: probeer het over een paar minuten.")
    await audit_export(request, service, who, email, len(export["registrations"]))
    body = json.dumps(jsonable_encoder(export), ensure_ascii=False, indent=2)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="inzageverzoek.json"',
            "Cache-Control": "no-store",
        },
    )
