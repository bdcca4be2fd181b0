"""The organiser dashboard and the attendance certificate (Dutch pages).

The dashboard renders the figures once on the server (readable without JavaScript), then
keeps the live counter, chart and region table current from the live feed (SSE) and reloads
the other figures every 10 s without reloading the page. The certificate is reached by a
personal signed link (``PersonalLinks.certificate``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sto_analytics import read_model as rm
from sto_analytics.api.figures import figures_of
from sto_analytics.service import event_report, series_report
from stolive_shared import links
from stolive_shared.organisers.web import PUBLIC, OrganiserPageDep
from stolive_shared.pages import render_page
from stolive_shared.templating import make_templates

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = make_templates(Path(__file__).parent.parent / "templates")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_index(request: Request, who: OrganiserPageDep) -> Response:
    async with request.app.state.pool.acquire() as conn:
        events = await rm.recent_events(conn)
        series = await rm.series_codes(conn)
    return render_page(
        templates, request, "index.html", events=events, series=series, organiser=who
    )


@router.get("/dashboard/{event_id}", response_class=HTMLResponse)
async def dashboard(event_id: uuid.UUID, request: Request, who: OrganiserPageDep) -> Response:
    settings = request.app.state.settings
    async with request.app.state.pool.acquire() as conn:
        report = await event_report(conn, event_id, settings.attendance_min_minutes)
        series = (
            await series_report(conn, report.event.series_code)
            if report.event and report.event.series_code
            else None
        )
    figures = figures_of(event_id, report)
    return render_page(
        templates,
        request,
        "dashboard.html",
        figures=figures,
        event=report.event,
        series=series,
        timeout_s=int(settings.live_timeout_s),
        organiser=who,
    )


@router.get("/certificaat/{token}", response_class=HTMLResponse, dependencies=[PUBLIC])
async def certificate(token: str, request: Request) -> Response:
    registration_id = request.app.state.parts.links.subject(links.CERTIFICATE, token)
    found = None
    if registration_id is not None:
        async with request.app.state.pool.acquire() as conn:
            found = await rm.certificate(conn, registration_id)
    if found is None or not found.attended:
        return render_page(
            templates, request, "certificate.html", status_code=404, certificate=None
        )
    return render_page(templates, request, "certificate.html", certificate=found)
