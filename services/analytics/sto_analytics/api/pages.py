"""The organiser dashboard and the attendance certificate (Dutch pages).

The dashboard renders the figures once on the server (readable without JavaScript), then
keeps the live counter, chart and region table current from the live feed (SSE) and reloads
the other figures every 10 s without reloading the page. The certificate is reached by a
personal signed link (``PersonalLinks.certificate``). The figures come from the use cases of
``AnalyticsService``; the pages only render them.

The dashboard is part of the organiser console: its header, and from an event's figures one
click to the event's hub, its attendees and a mailing to its people. An organiser sees the
events of their own scope only (``api.deps``), and a series' figures only when their scope is
the whole programme.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sto_analytics.api.deps import (
    EventFigurePage,
    FigurePage,
    SchoolLabels,
    ServiceDep,
    SettingsDep,
)
from sto_analytics.api.figures import figures_of
from stolive_shared.organisers.web import PUBLIC, access_of
from stolive_shared.pages import render_page
from stolive_shared.templating import make_templates

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = make_templates(Path(__file__).parent.parent / "templates")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_index(request: Request, service: ServiceDep, who: FigurePage) -> Response:
    scope = await access_of(request).scope.events_in(who)
    overview = await service.overview(scope, with_series=who.everywhere)
    return render_page(
        templates,
        request,
        "index.html",
        events=overview.events,
        series=overview.series,
        organiser=who,
    )


@router.get("/dashboard/{event_id}", response_class=HTMLResponse)
async def dashboard(
    event_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    schools: SchoolLabels,
    who: EventFigurePage,
) -> Response:
    shown = await service.dashboard(event_id, with_series=who.everywhere)
    return render_page(
        templates,
        request,
        "dashboard.html",
        figures=figures_of(event_id, shown.report, schools.label),
        event=shown.report.event,
        series=shown.series,
        timeout_s=int(settings.live_timeout_s),
        organiser=who,
    )


@router.get("/certificaat/{token}", response_class=HTMLResponse, dependencies=[PUBLIC])
async def certificate(token: str, request: Request, service: ServiceDep) -> Response:
    found = await service.certificate(token)
    if found is None:
        return render_page(
            templates, request, "certificate.html", status_code=404, certificate=None
        )
    return render_page(templates, request, "certificate.html", certificate=found)
