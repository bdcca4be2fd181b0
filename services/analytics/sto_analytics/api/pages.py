"""The organiser dashboard, the attendance list, the series page, and the attendance
certificate with its public verify page (Dutch pages).

The dashboard renders the figures once on the server (readable without JavaScript), then
keeps the live counter, chart and region table current from the live feed (SSE) and reloads
the other figures every 10 s without reloading the page. The certificate is reached by a
personal signed link (``PersonalLinks.certificate``) and prints on one A4 page, with a
verification code anyone may check on the verify page: it shows the name on the certificate
and the event, nothing more, and limits lookups per client address (``stolive_shared.
ratelimit``). The figures come from the use cases of ``AnalyticsService``; the pages only
render them.

The dashboard is part of the organiser console: its header, and from an event's figures one
click to the event's hub, its attendees and a mailing to its people. An organiser sees the
events of their own scope only (``api.deps``), and a series' figures only when their scope is
the whole programme.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sto_analytics import certificates
from sto_analytics.api.deps import (
    EventFigurePage,
    FigurePage,
    SchoolLabels,
    SeriesPage,
    ServiceDep,
    SettingsDep,
    get_parts,
)
from sto_analytics.api.figures import ATTENDED_AS_NL, STATUS_NL, figures_of
from sto_analytics.config import AnalyticsSettings
from stolive_shared.organisers.roles import Capability
from stolive_shared.organisers.web import OUT_OF_ROLE, PUBLIC, access_of
from stolive_shared.pages import render_page
from stolive_shared.ratelimit import Take, client_address
from stolive_shared.templating import make_templates
from stolive_shared.urls import PublicUrls

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


@router.get("/dashboard/reeks/{series_code}", response_class=HTMLResponse)
async def series_page(
    series_code: str, request: Request, service: ServiceDep, who: SeriesPage
) -> Response:
    """A series without an ended broadcast yet says so (and has nothing else to show)."""
    figures = await service.series_report(series_code)
    return render_page(
        templates,
        request,
        "series.html",
        series=figures,
        organiser=who,
    )


@router.get("/dashboard/{event_id}/aanwezigheid", response_class=HTMLResponse)
async def attendance_list(
    event_id: uuid.UUID, request: Request, service: ServiceDep, who: EventFigurePage
) -> Response:
    """Who attended, how, and who holds a certificate: names, so VIEW_REGISTRATIONS too."""
    if not who.may(Capability.VIEW_REGISTRATIONS):
        await access_of(request).refuse(
            request, who, OUT_OF_ROLE, event_id=event_id,
            detail={"needs": str(Capability.VIEW_REGISTRATIONS)},
        )  # fmt: skip
    report = await service.attendance(event_id)
    return render_page(
        templates,
        request,
        "attendance.html",
        report=report,
        event_id=event_id,
        status_nl=STATUS_NL,
        attended_as_nl=ATTENDED_AS_NL,
        organiser=who,
    )


# Longer than any code with dashes and spaces: read no further than this.
_MAX_TYPED = 40
_TOO_MANY = (
    "Je hebt te veel codes achter elkaar gecontroleerd. Probeer het over een minuut opnieuw."
)
_MALFORMED = (
    "Een controlecode bestaat uit 10 letters en cijfers, bijvoorbeeld 7KQ2M-XD9RT. Kijk de "
    "code op het certificaat nog eens na."
)


def verify_url(settings: AnalyticsSettings) -> str:
    """Where the verify page is at the public address (printed on every certificate)."""
    return f"{PublicUrls(settings.public_base_url).base}/analytics/certificaat/controle"


@router.get("/certificaat/controle", response_class=HTMLResponse, dependencies=[PUBLIC])
async def verify(request: Request, service: ServiceDep, code: str | None = None) -> Response:
    """The public check of a certificate's code: the name on it and the event, or "onbekende
    code". Every lookup draws on the caller's budget, found or not."""
    typed = (code or "").strip()[: _MAX_TYPED + 1]
    context: dict[str, Any] = {"typed": typed[:_MAX_TYPED], "found": None, "error": None}
    if not typed:
        return render_page(templates, request, "verify.html", **context)
    if len(typed) > _MAX_TYPED or certificates.normalised(typed) is None:
        context["error"] = _MALFORMED
        return render_page(templates, request, "verify.html", status_code=422, **context)
    parts = get_parts(request)
    wait = await parts.limits.retry_after(Take(parts.check_limit, client_address(request.scope)))
    if wait:
        context["error"] = _TOO_MANY
        page = render_page(templates, request, "verify.html", status_code=429, **context)
        page.headers["Retry-After"] = str(wait)
        return page
    found = await service.verify(typed)
    context["found"] = found
    page = render_page(
        templates, request, "verify.html", status_code=200 if found else 404, **context
    )
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/certificaat/{token}", response_class=HTMLResponse, dependencies=[PUBLIC])
async def certificate(
    token: str, request: Request, service: ServiceDep, settings: SettingsDep
) -> Response:
    found = await service.certificate(token)
    if found is None:
        return render_page(
            templates, request, "certificate.html", status_code=404, certificate=None
        )
    page = render_page(
        templates,
        request,
        "certificate.html",
        certificate=found,
        code=certificates.grouped(found.verification_code),
        verify_url=verify_url(settings),
    )
    page.headers["Cache-Control"] = "no-store"
    return page
