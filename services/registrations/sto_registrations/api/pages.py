"""Public pages (Dutch, no JavaScript needed): the sign-up form, the personal manage page with
its QR code, and leaving the waiting list.

The form offers the school sites (``sto_registrations.schools``) in a select, with "Andere
school of organisatie" and a text field for the rest; a small inline script (the page's CSP
nonce) filters the list as one types and shows the text field only when it is needed.

Forms are protected against cross-site posting with the shared double-submit token
(``stolive_shared.pages``).
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from sto_registrations.api.abuse import TOO_MANY
from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.schools import at_school, form_choice, school_directory
from sto_registrations.domain import (
    MAX_COLLEAGUES,
    MAX_EMAIL,
    MAX_NAME,
    MAX_ORGANISATION,
    PROFILES,
    ROLES,
    WEBINAR,
    Applicant,
    Availability,
    SchoolUnknown,
    SignUpRefused,
    group_problems,
)
from sto_registrations.schools import OTHER, chosen_code
from sto_registrations.service import EventUnknown, RegistrationUnknown, SignUpResult
from stolive_shared import pages as shared_pages
from stolive_shared.events_client import RegionDirectory
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import base_path, render_form_page
from stolive_shared.programme import KIND_NL
from stolive_shared.templating import make_templates
from stolive_shared.urls import PublicUrls
from stolive_shared.web import allow_framing

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])
templates = make_templates(Path(__file__).parent.parent / "templates")

CSRF_COOKIE = "sto_csrf"
STATUS_LABELS = {
    "confirmed": "Aangemeld",
    "waitlisted": "Op de wachtlijst",
    "cancelled": "Geannuleerd",
}


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render_form_page(
        templates, request, name, cookie=CSRF_COOKIE, status_code=status_code, **context
    )


def csrf_ok(request: Request, form_token: object) -> bool:
    return shared_pages.csrf_ok(request, CSRF_COOKIE, form_token)


def message_page(
    request: Request, heading: str, message: str, status_code: int, **context: Any
) -> HTMLResponse:
    """A heading and a sentence (``context``: the organiser, on the organiser pages)."""
    return render(request, "message.html", status_code, heading=heading, message=message, **context)


def expired_form(request: Request) -> HTMLResponse:
    return message_page(
        request, "Formulier verlopen", "Laad de pagina opnieuw en probeer het nog eens.", 403
    )


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, service: ServiceDep) -> HTMLResponse:
    urls = PublicUrls(request.app.state.parts.runtime.settings.public_base_url)
    return render(
        request,
        "events.html",
        agenda=await service.agenda(),
        kinds=KIND_NL,
        newsletter_url=urls.newsletter_form(),
    )


async def _form_page(
    request: Request,
    event: Any,
    places: Availability,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    colleague_rows: int = 0,
    refused: str = "",
) -> HTMLResponse:
    allow_framing(request)  # regional sites may embed the form (FRAME_ANCESTORS)
    directory: RegionDirectory = request.app.state.parts.regions
    regions = await directory.regions()
    return render(
        request,
        "signup.html",
        status_code,
        event=event,
        places=places,
        refused=refused,
        form=form,
        errors=errors,
        roles=ROLES,
        profiles=PROFILES,
        regions=regions,
        schools=form_choice(school_directory(request), regions, event, form),
        other_school=OTHER,
        colleague_rows=range(1, colleague_rows + 1),
        max_colleagues=MAX_COLLEAGUES,
        limits={"name": MAX_NAME, "email": MAX_EMAIL, "organisation": MAX_ORGANISATION},
    )


@router.get("/events/{event_id}/aanmelden", response_class=HTMLResponse)
async def signup_form(event_id: uuid.UUID, request: Request, service: ServiceDep) -> HTMLResponse:
    try:
        event, places = await service.event_with_availability(event_id)
    except EventUnknown:
        return message_page(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    return await _form_page(request, event, places, {"profiles": []}, {})


def _field(form: FormData, key: str, limit: int = 300) -> str:
    """A text field, cut at a bound (the validation then reports it as too long)."""
    return str(form.get(key, ""))[:limit]


def _applicants(form: FormData) -> tuple[list[Applicant], list[int]]:
    """The person filling in the form, then each colleague row that has anything in it (at the
    person's school: ``at_school`` gives them the chosen site once it is known)."""
    organisation = _field(form, "organisation")
    region = _field(form, "region_code", 60) or None
    applicants = [
        Applicant(
            name=_field(form, "name"),
            email=_field(form, "email").strip(),
            organisation=organisation,
            role=_field(form, "role", 40),
            region_code=region,
            profiles=tuple(str(p)[:10] for p in form.getlist("profiles"))[:5],
            newsletter=form.get("newsletter") == "ja",
            school_code=chosen_code(_field(form, "school_code", 12)),
        )
    ]
    rows: list[int] = []
    for row in range(1, MAX_COLLEAGUES + 1):
        name = _field(form, f"colleague_name_{row}")
        email = _field(form, f"colleague_email_{row}").strip()
        if not name.strip() and not email:
            continue
        rows.append(row)
        applicants.append(
            Applicant(
                name=name,
                email=email,
                organisation=organisation,
                role=_field(form, f"colleague_role_{row}", 40) or "docent",
                region_code=region,
            )
        )
    return applicants, rows


def _shown_rows(form: FormData, filled: list[int]) -> int:
    """How many colleague rows the form showed (kept when it is shown again)."""
    shown = _field(form, "collega_rijen", 3)
    count = int(shown) if shown.isdigit() else 0
    return min(MAX_COLLEAGUES, max([count, *filled]))


def _form_values(form: FormData, applicants: list[Applicant]) -> dict[str, Any]:
    values: dict[str, Any] = {key: str(value)[:300] for key, value in form.items()}
    values["profiles"] = applicants[0].profiles
    return values


@router.post("/events/{event_id}/aanmelden", response_class=HTMLResponse)
async def signup_submit(event_id: uuid.UUID, request: Request, service: ServiceDep) -> Response:
    allow_framing(request)
    form = await request.form()
    try:
        event, places = await service.event_with_availability(event_id)
    except EventUnknown:
        return message_page(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    applicants, rows = _applicants(form)
    shown = _shown_rows(form, rows)
    if form.get("actie") == "collegas":  # no JavaScript: the server adds colleague rows
        values = _form_values(form, applicants)
        return await _form_page(
            request, event, places, values, {}, colleague_rows=min(MAX_COLLEAGUES, shown + 3)
        )
    if form.get("actie") == "scholen":  # too many sites to list: those of the chosen region
        values = _form_values(form, applicants)
        return await _form_page(request, event, places, values, {}, colleague_rows=shown)
    wait = await request.app.state.parts.sign_up_limit.retry_after(request.scope, len(applicants))
    if wait:
        page = message_page(request, "Even geduld", TOO_MANY, 429)
        page.headers["Retry-After"] = str(wait)
        return page
    errors: dict[str, str] = {}
    for index, found in group_problems(applicants).items():
        for field, text in found.items():
            key = field if index == 0 else f"colleague_{field}_{rows[index - 1]}"
            errors[key] = text if index == 0 else f"Collega {rows[index - 1]}: {text}"
    if "school_code" not in errors:
        try:
            school = applicants[0].school_code
            applicants = await at_school(school_directory(request), applicants, school)
        except SchoolUnknown as unknown:
            errors["school_code"] = str(unknown)
    if form.get("consent") != "ja":
        errors["consent"] = (
            "Je kunt je alleen aanmelden als je akkoord gaat met de privacyverklaring."
        )
    if form.get("website"):  # the honeypot: people never see it, bots fill it in
        errors["name"] = "Je aanmelding kon niet worden verwerkt."
    if errors:
        values = _form_values(form, applicants)
        return await _form_page(request, event, places, values, errors, 422, colleague_rows=shown)
    try:
        if len(applicants) == 1:
            answers: list[SignUpResult | Exception] = [
                await service.sign_up(event_id, applicants[0])
            ]
        else:
            answers = await service.sign_up_group(event_id, applicants)
    except SignUpRefused as refused:
        # Full or closed while the person was typing: the form again, with what they typed.
        _, places = await service.event_with_availability(event_id)
        return await _form_page(
            request,
            event,
            places,
            _form_values(form, applicants),
            {},
            refused.status,
            colleague_rows=shown,
            refused=str(refused),
        )
    # The same answer whether or not an address was registered already: what happened is in
    # each person's own mailbox, with their own links (a new sign-up's confirmation, or
    # "Je was al aangemeld"). Only a colleague refused for want of seats is counted here.
    refused_count = sum(isinstance(answer, Exception) for answer in answers[1:])
    query = f"?geweigerd={refused_count}" if refused_count else ""
    return RedirectResponse(f"{base_path(request)}/events/{event_id}/ontvangen{query}", 303)


@router.get("/events/{event_id}/ontvangen", response_class=HTMLResponse)
async def received(event_id: uuid.UUID, request: Request, service: ServiceDep) -> HTMLResponse:
    """What everyone sees after sending the form: look in your mailbox."""
    allow_framing(request)
    try:
        event = await service.event_terms(event_id)
    except EventUnknown:
        return message_page(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    refused = request.query_params.get("geweigerd", "")
    return render(
        request,
        "received.html",
        event=event,
        refused_colleagues=min(int(refused), MAX_COLLEAGUES) if refused.isdigit() else 0,
    )


@router.get("/r/{token}", response_class=HTMLResponse)
async def manage(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    try:
        registration, event = await service.by_personal_link(token)
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", "Deze link is niet (meer) geldig.", 404)
    colleagues = await service.booked_colleagues(registration.id)
    position = (
        await service.waitlist_position(registration)
        if registration.status == "waitlisted"
        else None
    )
    return render(
        request,
        "manage.html",
        registration=registration,
        event=event,
        token=token,
        status_label=STATUS_LABELS[registration.status],
        status_labels=STATUS_LABELS,
        just_cancelled=request.query_params.get("geannuleerd") == "1",
        left_waitlist=request.query_params.get("wachtlijst") == "verlaten",
        colleague_cancelled=request.query_params.get("collega") == "geannuleerd",
        colleagues=colleagues,
        waitlist_position=position,
        join_url=service.join_url(registration, event)
        if registration.status == "confirmed"
        else None,
        shows_qr=registration.status == "confirmed" and event.kind != WEBINAR,
        certificate_url=await service.certificate_url(registration.id),
    )


@router.get("/r/{token}/qr.svg")
async def check_in_qr(token: str, service: ServiceDep) -> Response:
    """The QR code on the confirmation: it holds the check-in URL an organiser opens."""
    try:
        registration, event = await service.by_personal_link(token)
    except RegistrationUnknown:
        return Response("Niet gevonden", status_code=404, media_type="text/plain")
    if registration.status != "confirmed" or event.kind == WEBINAR:
        return Response("Geen QR-code voor deze aanmelding", 404, media_type="text/plain")
    code = segno.make(service.check_in_url(registration.id), error="m")
    buffer = io.BytesIO()
    code.save(
        buffer, kind="svg", scale=6, border=4, xmldecl=False, title="QR-code om in te checken"
    )
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
    )


@router.post("/r/{token}/annuleren")
async def cancel(token: str, request: Request, service: ServiceDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        registration, _ = await service.by_personal_link(token)
        leaving_waitlist = registration.status == "waitlisted"
        reason = "left_waitlist" if leaving_waitlist else "cancelled_by_registrant"
        await service.cancel(registration.id, reason)
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", "Deze link is niet (meer) geldig.", 404)
    done = "wachtlijst=verlaten" if leaving_waitlist else "geannuleerd=1"
    return RedirectResponse(f"{base_path(request)}/r/{token}?{done}", status_code=303)


@router.post("/r/{token}/collegas/{colleague_id}/annuleren")
async def cancel_colleague(
    token: str, colleague_id: uuid.UUID, request: Request, service: ServiceDep
) -> Response:
    """The booker cancels a colleague they signed up; nobody else's."""
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        booker_id = service.registration_for_token(token)
        await service.cancel_colleague(booker_id, colleague_id)
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", "Deze link is niet (meer) geldig.", 404)
    return RedirectResponse(f"{base_path(request)}/r/{token}?collega=geannuleerd", status_code=303)
