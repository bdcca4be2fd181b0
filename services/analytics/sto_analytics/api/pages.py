"""The organiser dashboard and the attendance certificate (Dutch pages).

The dashboard renders the figures once on the server (readable without JavaScript), then
keeps the live counter, chart and region table current from the live feed (SSE) and reloads
the other figures every 10 s without reloading the page. The certificate is reached by a
personal signed link (``PersonalLinks.certificate``). The figures come from the use cases of
``AnalyticsService``; the pages only render them.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sto_analytics.api.deps import ServiceDep, SettingsDep
from sto_analytics.api.figures import figures_of
from stolive_shared.organisers.web import PUBLIC, OrganiserPageDep
from stolive_shared.pages import render_page
from stolive_shared.templating import make_templates

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = make_templates(Path(__file__).parent.parent / "templates")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_index(request: Request, service: ServiceDep, who: OrganiserPageDep) -> Response:
    overview = await service.overview()
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
    who: OrganiserPageDep,
) -> Response:
    shown = await service.dashboard(event_id)
    return render_page(
        templates,
        request,
        "dashboard.html",
        figures=figures_of(event_id, shown.report),
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
