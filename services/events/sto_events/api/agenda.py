"""The public agenda: the year's calendar as JSON, iCalendar feeds, and Dutch agenda pages,
and the "Terugblikken" page (the broadcasts with a replay, newest first).

Only published events appear (published, live, ended). A region's agenda lists the meetings
of that region and everything national (webinars and the national day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from sto_events.adapters.calendar_feed import build_feed
from sto_events.api.deps import ServiceDep
from sto_events.api.rendering import pages, public_url
from sto_events.api.schemas import CalendarMonth, CalendarPublic, EventPublic
from sto_events.domain import PROGRAMME_TZ, Event, year_bounds
from sto_events.repository import EventFilter
from sto_events.service import RegionNotFound
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import base_path
from stolive_shared.urls import PublicUrls

router = APIRouter(tags=["agenda"], dependencies=[PUBLIC])

ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"
MONTHS_NL = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)  # fmt: skip
# Feeds show what is coming and what happened recently (for replays), not all of history.
FEED_PAST = timedelta(days=90)


@router.get("/calendar", response_model=CalendarPublic, summary="A year of published events")
async def calendar(
    service: ServiceDep,
    year: int = Query(ge=2000, le=2100, description="The Amsterdam calendar year"),
    region: str | None = Query(default=None, max_length=40),
) -> CalendarPublic:
    starts_from, starts_before = year_bounds(year)
    events = await service.list_events(
        EventFilter(region_code=region, starts_from=starts_from, starts_before=starts_before)
    )
    months = [CalendarMonth(month=m, name=MONTHS_NL[m - 1], events=[]) for m in range(1, 13)]
    for event in events:
        months[event.starts_at.astimezone(PROGRAMME_TZ).month - 1].events.append(
            EventPublic.of(event)
        )
    return CalendarPublic(year=year, months=months)


def _links(request: Request, events: list[Event]) -> dict[str, str]:
    """Webinars open on their watch page; meetings on their sign-up page."""
    urls: PublicUrls = request.app.state.parts.urls
    return {
        # Its own page under its own prefix (ROOT_PATH); another service's through PublicUrls.
        str(e.id): public_url(request, f"/watch/{e.id}")
        if e.kind == "webinar"
        else urls.sign_up_form(e.id)
        for e in events
    }


def _ics(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type=ICS_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "public, max-age=300",
        },
    )


@router.get(
    "/agenda.ics",
    summary="iCalendar feed of every published event",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def national_feed(request: Request, service: ServiceDep) -> Response:
    now = datetime.now(UTC)
    events = await service.list_events(EventFilter(ends_after=now - FEED_PAST, limit=2000))
    body = build_feed(
        events,
        name="STO Live: alle bijeenkomsten",
        description="Alle STO LIVE-uitzendingen en bijeenkomsten van Sterk Techniekonderwijs",
        now=now,
        page_url=public_url(request, "/agenda"),
        link_for=_links(request, events),
    )
    return _ics(body, "sto-live.ics")


@router.get(
    "/regio/{code}/agenda.ics",
    summary="iCalendar feed of one region's meetings and the national events",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 404: {"description": "Unknown region"}},
)
async def region_feed(code: str, request: Request, service: ServiceDep) -> Response:
    try:
        region = await service.region(code)
    except RegionNotFound:
        return Response("Onbekende regio", status_code=404, media_type="text/plain")
    now = datetime.now(UTC)
    events = await service.list_events(
        EventFilter(region_code=region.code, ends_after=now - FEED_PAST, limit=2000)
    )
    body = build_feed(
        events,
        name=f"STO Live: {region.name}",
        description=f"Bijeenkomsten in STO-regio {region.name} en de landelijke uitzendingen",
        now=now,
        page_url=public_url(request, f"/regio/{region.code}"),
        link_for=_links(request, events),
    )
    return _ics(body, f"sto-live-{region.code}.ics")


@router.get("/", include_in_schema=False)
async def home(request: Request) -> RedirectResponse:
    """The service's own address opens the agenda."""
    return RedirectResponse(f"{base_path(request)}/agenda", status_code=307)


@router.get("/agenda", response_class=HTMLResponse, include_in_schema=False)
async def agenda_page(request: Request, service: ServiceDep) -> HTMLResponse:
    now = datetime.now(UTC)
    events = await service.list_events(EventFilter(ends_after=now, limit=200))
    return pages.render(
        request,
        "agenda.html",
        events=events,
        regions=await service.regions(),
        links=_links(request, events),
        feed_url=public_url(request, "/agenda.ics"),
    )


@router.get("/terugblikken", response_class=HTMLResponse, include_in_schema=False)
async def replays_page(request: Request, service: ServiceDep) -> HTMLResponse:
    """Every broadcast that has ended with a replay, newest first, to its watch page."""
    replays = await service.replays()
    return pages.render(
        request,
        "replays.html",
        replays=replays,
        links={str(e.id): public_url(request, f"/watch/{e.id}") for e in replays},
        series={s.code: s.title for s in await service.series()},
    )


@router.get("/regio/{code}", response_class=HTMLResponse, include_in_schema=False)
async def region_page(code: str, request: Request, service: ServiceDep) -> HTMLResponse:
    try:
        region = await service.region(code)
    except RegionNotFound:
        return pages.message(request, "Regio niet gevonden", "Deze STO-regio bestaat niet.", 404)
    now = datetime.now(UTC)
    events = await service.list_events(
        EventFilter(region_code=region.code, ends_after=now, limit=200)
    )
    return pages.render(
        request,
        "region.html",
        region=region,
        meetings=[e for e in events if e.kind in ("regional_meeting", "supra_regional_meeting")],
        national=[e for e in events if e.kind in ("webinar", "national_day")],
        links=_links(request, events),
        feed_url=public_url(request, f"/regio/{region.code}/agenda.ics"),
    )
