"""Organiser pages (Dutch, no JavaScript needed): plan, publish, move and cancel events.

Signing in is ``console_access``. A regional programme leader sees and changes only the
events of their own regions, and gives new events only those regions. Every form carries the
double-submit CSRF token. Forms are read into the same request schemas
as the JSON API (``organiser_forms``) and go through the same use cases, so a page can do
nothing the API would refuse, and vice versa.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from sto_events.api import organiser_forms as forms
from sto_events.api.deps import ServiceDep
from sto_events.api.rendering import pages
from sto_events.domain import (
    DuplicateSeriesNumber,
    Event,
    EventRuleViolation,
    IllegalTransition,
    Region,
    parse_regions_csv,
    to_utc,
)
from sto_events.repository import EventFilter
from sto_events.service import EventNotFound, EventsService
from stolive_shared.contracts.events import EventKind, EventStatus
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs_page
from stolive_shared.pages import base_path

log = logging.getLogger(__name__)
router = APIRouter(prefix="/organiser", include_in_schema=False)

Viewer = Annotated[Organiser, needs_page(Capability.VIEW_EVENTS)]
EventViewer = Annotated[Organiser, needs_page(Capability.VIEW_EVENTS, event=True)]
Planner = Annotated[Organiser, needs_page(Capability.EDIT_EVENTS)]
EventPlanner = Annotated[Organiser, needs_page(Capability.EDIT_EVENTS, event=True)]
ProgrammeSetup = Annotated[Organiser, needs_page(Capability.PROGRAMME_SETUP)]

KINDS: tuple[EventKind, ...] = (
    "webinar",
    "regional_meeting",
    "supra_regional_meeting",
    "national_day",
)
STATUSES: tuple[EventStatus, ...] = ("draft", "published", "live", "ended", "cancelled")


# -- overview and new events -----------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, service: ServiceDep, organiser: Viewer) -> Response:
    """The events in the organiser's scope, filtered and searched, each with its counts."""
    params = request.query_params
    kind = params.get("kind") if params.get("kind") in KINDS else None
    status = params.get("status") if params.get("status") in STATUSES else None
    region = params.get("region") or None
    search = (params.get("zoek") or "").strip()[:100]
    events = await service.list_events(
        EventFilter(
            kind=kind,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            region_code=region,
            within_regions=None if organiser.everywhere else organiser.regions,
            public_only=False,
        )
    )
    if search:
        events = [e for e in events if search.casefold() in e.title.casefold()]
    counts = await request.app.state.parts.counts.of_many(
        [e.id for e in events], live=[e.id for e in events if e.status == "live"]
    )
    return pages.render(
        request,
        "organiser/events.html",
        organiser=organiser,
        events=events,
        counts=counts,
        regions=await _regions_of(service, organiser),
        kinds=KINDS,
        statuses=STATUSES,
        chosen={
            "kind": kind or "",
            "status": status or "",
            "region": region or "",
            "zoek": search,
        },
    )


@router.get("/nieuw", response_class=HTMLResponse)
async def new_event_form(request: Request, service: ServiceDep, organiser: Planner) -> Response:
    return await _render_new(request, service, organiser, {"waitlist_enabled": "ja"}, {}, set())


async def _render_new(
    request: Request,
    service: EventsService,
    organiser: Organiser,
    form: dict[str, Any],
    errors: dict[str, str],
    ask_offset: set[str],
    status_code: int = 200,
) -> HTMLResponse:
    form.setdefault("region_codes", [])
    form.setdefault("reminder_offsets_hours", "24, 1")
    return pages.render(
        request,
        "organiser/new.html",
        status_code,
        organiser=organiser,
        form=form,
        errors=errors,
        ask_offset=ask_offset,
        offsets=forms.OFFSETS,
        kinds=KINDS,
        regions=await _regions_of(service, organiser),
        series=await service.series(),
    )


@router.post("/nieuw", response_class=HTMLResponse)
async def create_event(request: Request, service: ServiceDep, organiser: Planner) -> Response:
    form = await pages.form(request)
    errors: dict[str, str] = {}
    ask_offset: set[str] = set()
    status_code = 422
    try:
        new_event = forms.new_event(form)
        if not organiser.everywhere:
            await access_of(request).check_regions(request, organiser, new_event.region_codes)
        event = await service.create_event(new_event.to_event())
    except ValidationError as exc:
        errors = forms.problems(exc)
    except DuplicateSeriesNumber as exc:
        errors, status_code = forms.rule_problem(exc)[0], 409
    except EventRuleViolation as exc:
        errors, ask_offset = forms.rule_problem(exc)
    else:
        return RedirectResponse(
            f"{base_path(request)}/organiser/evenementen/{event.id}?aangemaakt=1", status_code=303
        )
    return await _render_new(
        request, service, organiser, forms.echo(form), errors, ask_offset, status_code
    )


# -- regions ------------------------------------------------------------------------------------


@router.get("/regios", response_class=HTMLResponse)
async def regions_page(
    request: Request, service: ServiceDep, organiser: ProgrammeSetup
) -> Response:
    notice = None
    if "ingelezen" in request.query_params:
        notice = f"{request.query_params['ingelezen']} regio's ingelezen."
    return pages.render(
        request,
        "organiser/regions.html",
        organiser=organiser,
        regions=await service.regions(),
        error=None,
        notice=notice,
    )


@router.post("/regios", response_class=HTMLResponse)
async def import_regions(
    request: Request, service: ServiceDep, organiser: ProgrammeSetup
) -> Response:
    """The same CSV import as ``POST /api/regions/import``, from a file picked on the page."""
    async with request.form(max_files=1, max_fields=5, max_part_size=1_000_000) as form:
        token_ok = pages.csrf_ok(request, form.get("csrf_token"))
        upload = form.get("bestand")
        raw = await upload.read() if token_ok and isinstance(upload, UploadFile) else b""
    if not token_ok:
        return pages.expired_form(request)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    try:
        count = await service.import_regions(parse_regions_csv(text))
    except EventRuleViolation as refused:
        return pages.render(
            request,
            "organiser/regions.html",
            422,
            organiser=organiser,
            regions=await service.regions(),
            error=f"Niets ingelezen: {refused}.",
            notice=None,
        )
    return RedirectResponse(
        f"{base_path(request)}/organiser/regios?ingelezen={count}", status_code=303
    )


# -- one event ----------------------------------------------------------------------------------


async def _render_event(
    request: Request,
    service: EventsService,
    organiser: Organiser,
    event: Event,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    ask_offset: set[str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return pages.render(
        request,
        "organiser/event.html",
        status_code,
        organiser=organiser,
        event=event,
        form=form or forms.event_form_values(event),
        errors=errors or {},
        ask_offset=ask_offset or set(),
        offsets=forms.OFFSETS,
        regions=await _regions_of(service, organiser),
        notice=notice,
        sign_up_url=request.app.state.parts.urls.sign_up_form(event.id),
    )


NOTICES = {
    "aangemaakt": "Het evenement is aangemaakt als concept.",
    "opgeslagen": "De wijzigingen zijn opgeslagen.",
    "publiceren": "Het evenement is gepubliceerd.",
    "live": "Het evenement is nu live.",
    "beeindigen": "Het evenement is beëindigd.",
    "verplaatsen": "Het evenement is verplaatst.",
    "annuleren": "Het evenement is geannuleerd.",
    "terugblik": "De terugblik is gepubliceerd.",
}


@router.get("/evenementen/{event_id}", response_class=HTMLResponse)
async def event_page(
    event_id: uuid.UUID, request: Request, service: ServiceDep, organiser: EventViewer
) -> Response:
    try:
        event = await service.get_event(event_id, public_only=False)
    except EventNotFound:
        return pages.message(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    notice = next((text for key, text in NOTICES.items() if key in request.query_params), None)
    return await _render_event(request, service, organiser, event, notice=notice)


@router.post("/evenementen/{event_id}", response_class=HTMLResponse)
async def save_event(
    event_id: uuid.UUID, request: Request, service: ServiceDep, organiser: EventPlanner
) -> Response:
    return await _step(event_id, request, service, organiser, "opslaan")


@router.post("/evenementen/{event_id}/{step}", response_class=HTMLResponse)
async def lifecycle_step(
    event_id: uuid.UUID,
    step: str,
    request: Request,
    service: ServiceDep,
    organiser: EventPlanner,
) -> Response:
    if step not in ("publiceren", "live", "beeindigen", "verplaatsen", "annuleren", "terugblik"):
        return pages.message(request, "Niet gevonden", "Deze stap bestaat niet.", 404)
    return await _step(event_id, request, service, organiser, step)


async def _step(
    event_id: uuid.UUID, request: Request, service: EventsService, organiser: Organiser, step: str
) -> Response:
    form = await pages.form(request)
    try:
        event = await service.get_event(event_id, public_only=False)
    except EventNotFound:
        return pages.message(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    try:
        regions = forms.event_update(form).region_codes if step == "opslaan" else None
        if regions is not None and not organiser.everywhere:
            await access_of(request).check_regions(request, organiser, regions)
        await _apply(service, event, step, form, organiser)
    except ValidationError as exc:
        return await _render_event(
            request,
            service,
            organiser,
            event,
            form=forms.refill(event, form),
            errors=forms.problems(exc),
            status_code=422,
        )
    except IllegalTransition as exc:
        return await _render_event(
            request,
            service,
            organiser,
            event,
            errors={"form": forms.sentence(exc)},
            status_code=409,
        )
    except EventRuleViolation as exc:
        errors, ask_offset = forms.rule_problem(exc)
        return await _render_event(
            request,
            service,
            organiser,
            event,
            form=forms.refill(event, form),
            errors=errors,
            ask_offset=ask_offset,
            status_code=422,
        )
    done = "opgeslagen" if step == "opslaan" else step
    # The replay form of the event hub goes back there.
    page = "/overzicht" if step == "terugblik" and form.get("terug") == "overzicht" else ""
    return RedirectResponse(
        f"{base_path(request)}/organiser/evenementen/{event_id}{page}?{done}=1", status_code=303
    )


async def _apply(
    service: EventsService, event: Event, step: str, form: FormData, organiser: Organiser
) -> Event:
    """One form's change through the API's schemas and the service's use cases."""
    if step == "terugblik":
        replay = forms.replay(form)
        return await service.publish_replay(
            event.id, str(replay.replay_url), organiser, replay.captions()
        )
    if step == "opslaan":
        return await service.update(event.id, forms.event_update(form).changes())
    if step == "publiceren":
        return await service.publish(event.id)
    if step == "live":
        return await service.go_live(event.id)
    if step == "beeindigen":
        ending = forms.ending(form)
        return await service.end(event.id, str(ending.replay_url) if ending.replay_url else None)
    if step == "annuleren":
        return await service.cancel(event.id, forms.cancellation(form).reason)
    moved = forms.reschedule(form)
    return await service.reschedule(
        event.id, to_utc(moved.starts_at, "starts_at"), to_utc(moved.ends_at, "ends_at")
    )


async def _regions_of(service: EventsService, organiser: Organiser) -> list[Region]:
    """The regions an organiser may choose: a regional leader's own, everyone else's all."""
    regions = await service.regions()
    return regions if organiser.everywhere else [r for r in regions if r.code in organiser.regions]
