"""Organiser pages (Dutch, no JavaScript): attendee lists, check-in by list or by the QR code,
and the privacy requests.

The QR code on a confirmation holds a check-in URL. An organiser scans it with a phone's
camera and opens it in the browser where they are logged in; the page shows who it is and a
button, so a link preview or a scanner that fetches the URL never checks anyone in.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sto_registrations.api.attendees import STATUS_FILTERS, AttendeeFilter
from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.pages import (
    STATUS_LABELS,
    csrf_ok,
    expired_form,
    message_page,
    render,
)
from sto_registrations.domain import ROLES, WEBINAR
from sto_registrations.service import CheckInRefused, EventUnknown, RegistrationUnknown
from stolive_shared.events_client import RegionDirectory
from stolive_shared.internal import ServiceUnavailable
from stolive_shared.organisers.web import OrganiserPageDep
from stolive_shared.pages import base_path

router = APIRouter(prefix="/organisator", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def events(
    request: Request, service: ServiceDep, _organiser: OrganiserPageDep
) -> HTMLResponse:
    listed = await service.all_events()
    counts = {event.id: await service.counts(event.id) for event in listed}
    return render(request, "organiser_events.html", events=listed, counts=counts, wide=True)


@router.get("/evenementen/{event_id}", response_class=HTMLResponse)
async def attendees(
    event_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    _organiser: OrganiserPageDep,
    status: str | None = None,
    regio: str | None = None,
    rol: str | None = None,
) -> HTMLResponse:
    try:
        event = await service.event_terms(event_id)
    except EventUnknown:
        return message_page(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    chosen = AttendeeFilter.of(status, regio, rol)
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
        event=event,
        attendees=found,
        counts=await service.counts(event_id),
        chosen=chosen,
        statuses=STATUS_FILTERS,
        status_labels=STATUS_LABELS,
        roles=ROLES,
        regions=await directory.regions(),
        physical=event.kind != WEBINAR,
        csv_url=f"{base_path(request)}/api/organiser/events/{event_id}/attendees.csv"
        + (f"?{query}" if query else ""),
        checked_in=request.query_params.get("ingecheckt", ""),
        wide=True,
    )


@router.post("/evenementen/{event_id}/inchecken/{registration_id}")
async def check_in_from_list(
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    organiser: OrganiserPageDep,
) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        registration = await service.check_in(registration_id, organiser)
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", "Deze aanmelding bestaat niet.", 404)
    except CheckInRefused as refused:
        return message_page(request, "Inchecken niet mogelijk", str(refused), 409)
    back = str(form.get("terug", ""))
    target = back if back.startswith("?") else ""
    separator = "&" if target else "?"
    return RedirectResponse(
        f"{base_path(request)}/organisator/evenementen/{event_id}{target}"
        f"{separator}ingecheckt={registration.id}#r-{registration.id}",
        status_code=303,
    )


async def _check_in_page(
    request: Request, token: str, service: ServiceDep, *, organiser: str, confirm: bool
) -> HTMLResponse:
    try:
        registration_id = service.registration_for_check_in_token(token)
        registration, event = await service.get(registration_id)
    except RegistrationUnknown:
        return message_page(request, "Onbekende QR-code", "Deze QR-code is niet geldig.", 404)
    problem = None
    just_checked_in = False
    if confirm:
        try:
            before = registration.checked_in_at
            registration = await service.check_in(registration_id, organiser)
            just_checked_in = before is None
        except CheckInRefused as refused:
            problem = str(refused)
    return render(
        request,
        "organiser_check_in.html",
        409 if problem else 200,
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
    token: str, request: Request, service: ServiceDep, organiser: OrganiserPageDep
) -> HTMLResponse:
    return await _check_in_page(request, token, service, organiser=organiser, confirm=False)


@router.post("/inchecken/{token}", response_class=HTMLResponse)
async def confirm_check_in_by_qr(
    token: str, request: Request, service: ServiceDep, organiser: OrganiserPageDep
) -> HTMLResponse:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    return await _check_in_page(request, token, service, organiser=organiser, confirm=True)


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, _organiser: OrganiserPageDep) -> HTMLResponse:
    return render(request, "organiser_privacy.html", erased=None, email="")


@router.post("/privacy")
async def privacy_request(
    request: Request, service: ServiceDep, _organiser: OrganiserPageDep
) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    email = str(form.get("email", ""))[:254].strip()
    if "@" not in email:
        return render(
            request,
            "organiser_privacy.html",
            422,
            erased=None,
            email=email,
            error="Vul het e-mailadres in waar het verzoek over gaat.",
        )
    if form.get("actie") == "verwijderen":
        if form.get("zeker") != "ja":
            return render(
                request,
                "organiser_privacy.html",
                422,
                erased=None,
                email=email,
                error="Vink aan dat je deze persoon echt wilt verwijderen.",
            )
        erased = await service.erase_person(email)
        return render(
            request,
            "organiser_privacy.html",
            erased=len(erased),
            email="",
            reference=service.person_reference(email)[:12],
        )
    try:
        export: dict[str, Any] = await service.full_export(email)
    except ServiceUnavailable:
        return render(
            request,
            "organiser_privacy.html",
            503,
            erased=None,
            email=email,
            error="Niet alle diensten antwoorden nu: probeer het over een paar minuten.",
        )
    body = json.dumps(jsonable_encoder(export), ensure_ascii=False, indent=2)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="inzageverzoek.json"',
            "Cache-Control": "no-store",
        },
    )
