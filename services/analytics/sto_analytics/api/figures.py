"""Routes for figures: per event (live, views, attendance), per series, CSV and the live feed.
Each reads through a use case of ``AnalyticsService`` and shapes its answer.

Everything except the registration counts needs an organiser (bearer token or the site-wide
organiser session) who may read figures (``api.deps``): an event's only when it is in their
scope, a series' only for the whole-programme roles. The attendance list names people, so it
also needs VIEW_REGISTRATIONS, and each download is audited like the attendee CSV.

The live feed is Server-Sent Events: the live count is pushed every ``live_feed_interval_s``
while it changes, and a comment every 15 s keeps proxies open.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from sto_analytics import repository
from sto_analytics.api.deps import (
    EventFigureReader,
    SchoolLabels,
    SeriesReader,
    ServiceDep,
    SettingsDep,
)
from sto_analytics.service import EventReport
from stolive_shared.organisers.roles import Capability
from stolive_shared.organisers.web import OUT_OF_ROLE, PUBLIC, access_of
from stolive_shared.spreadsheets import CSV_MEDIA_TYPE, spreadsheet_csv

router = APIRouter(prefix="/api", tags=["figures"])


class RegistrationFigures(BaseModel):
    event_id: uuid.UUID
    confirmed: int
    waitlisted: int
    cancelled: int


@router.get(
    "/events/{event_id}/registrations",
    response_model=RegistrationFigures,
    summary="Registrations counted from the registrations topic (counts only, no login)",
    dependencies=[PUBLIC],
)
async def registration_figures(event_id: uuid.UUID, service: ServiceDep) -> RegistrationFigures:
    counted = await service.registrations(event_id)
    return RegistrationFigures(
        event_id=event_id,
        confirmed=counted.confirmed,
        waitlisted=counted.waitlisted,
        cancelled=counted.cancelled,
    )


class LiveFigures(BaseModel):
    event_id: uuid.UUID
    viewers: int
    peak: int
    peak_at: datetime | None
    by_region: dict[str, int]
    by_role: dict[str, int]
    updated_at: datetime | None


class MinutePoint(BaseModel):
    minute: datetime
    viewers: int


class GroupOut(BaseModel):
    group: str
    viewers: int
    views: int
    watch_minutes: int
    live_now: int
    attended: int


class FunnelOut(BaseModel):
    registered: int
    confirmed: int
    waitlisted: int
    cancelled: int
    watched: int
    attended: int = Field(description="attended_live + attended_replay")
    attended_live: int = Field(
        description="Confirmed registrants who watched at least min_minutes_for_attendance "
        "minutes live, or were checked in at the venue"
    )
    attended_replay: int = Field(
        description="Confirmed registrants, not live, who watched at least "
        "min_minutes_for_attendance distinct minutes of the recording within "
        "replay_attendance_days after the end"
    )
    no_shows: int
    attendance_rate: float


class SchoolOut(BaseModel):
    school_code: str | None = Field(
        description="BRIN + vestigingsnummer of the school site chosen on the form; null for"
        " another school or organisation (typed) or none"
    )
    label: str = Field(description="The site's name and place, its code while unknown here")
    confirmed: int
    attended: int


# What the figures call registrants without a school site from the list.
OTHER_SCHOOL = "Andere school of organisatie"


class EventFigures(BaseModel):
    event_id: uuid.UUID
    title: str | None
    status: str | None
    final: bool = Field(
        description="Finalised: the live figures and live attendance are final from "
        "finalised_at; replay attendance at replay_attendance_final_at; views, unique "
        "viewers and watch minutes are never final (as of updated_at)"
    )
    finalised_at: datetime | None
    replay_attendance_final_at: datetime | None = Field(
        description="The end plus replay_attendance_days: replay watched later does not count "
        "toward attendance"
    )
    updated_at: datetime = Field(description="When these figures were computed")
    live: LiveFigures
    per_minute: list[MinutePoint]
    views_live: int
    views_replay: int
    views: int
    unique_viewers: int
    watch_minutes_live: int
    watch_minutes_replay: int
    broadcast_minutes: float
    average_live_viewers: float
    min_minutes_for_attendance: float
    replay_attendance_days: float
    certificates: int = Field(description="Registrants who hold a certificate")
    funnel: FunnelOut
    by_region: list[GroupOut]
    by_role: list[GroupOut]
    by_school: list[SchoolOut] = Field(
        description="Confirmed registrations and attendance per school site"
    )


def _live(live: repository.LiveNow) -> LiveFigures:
    return LiveFigures(
        event_id=live.event_id,
        viewers=live.viewers,
        peak=live.peak,
        peak_at=live.peak_at,
        by_region=live.by_region,
        by_role=live.by_role,
        updated_at=live.updated_at,
    )


def _groups(
    groups: list[repository.GroupFigures], live_now: dict[str, int], attended: dict[str, int]
) -> list[GroupOut]:
    out = {
        g.group: GroupOut(
            group=g.group,
            viewers=g.viewers,
            views=g.views,
            watch_minutes=g.watch_minutes,
            live_now=live_now.get(g.group, 0),
            attended=attended.get(g.group, 0),
        )
        for g in groups
    }
    for name in {*live_now, *attended} - set(out):
        out[name] = GroupOut(
            group=name,
            viewers=0,
            views=0,
            watch_minutes=0,
            live_now=live_now.get(name, 0),
            attended=attended.get(name, 0),
        )
    return sorted(out.values(), key=lambda g: (-g.viewers, -g.live_now, g.group))


def figures_of(
    event_id: uuid.UUID, report: EventReport, school_label: Callable[[str], str] = str
) -> EventFigures:
    """The figures of ``report``; ``school_label`` names a school site by its code."""
    watch, funnel = report.watch, report.funnel
    return EventFigures(
        event_id=event_id,
        title=report.event.title if report.event else None,
        status=report.event.status if report.event else None,
        final=report.final,
        finalised_at=report.finalised_at,
        replay_attendance_final_at=report.replay_window_ends_at,
        updated_at=report.computed_at,
        live=_live(report.live),
        per_minute=[
            MinutePoint(minute=datetime.fromtimestamp(m * 60, UTC), viewers=n)
            for m, n in report.per_minute
        ],
        views_live=watch.views_live,
        views_replay=watch.views_replay,
        views=watch.views,
        unique_viewers=watch.unique_viewers,
        watch_minutes_live=watch.watch_minutes_live,
        watch_minutes_replay=watch.watch_minutes_replay,
        broadcast_minutes=round(report.broadcast_minutes, 2),
        average_live_viewers=round(report.average_live_viewers, 2),
        min_minutes_for_attendance=report.min_minutes,
        replay_attendance_days=report.replay_attendance_days,
        certificates=sum(1 for line in report.registrants if line.registrant.certificate),
        funnel=FunnelOut(
            registered=funnel.registered,
            confirmed=funnel.confirmed,
            waitlisted=funnel.waitlisted,
            cancelled=funnel.cancelled,
            watched=funnel.watched,
            attended=funnel.attended,
            attended_live=funnel.attended_live,
            attended_replay=funnel.attended_replay,
            no_shows=funnel.no_shows,
            attendance_rate=round(funnel.attendance_rate, 4),
        ),
        by_region=_groups(report.by_region, report.live.by_region, report.attended_by_region),
        by_role=_groups(report.by_role, report.live.by_role, report.attended_by_role),
        by_school=[
            SchoolOut(
                school_code=school.school_code,
                label=school_label(school.school_code) if school.school_code else OTHER_SCHOOL,
                confirmed=school.confirmed,
                attended=school.attended,
            )
            for school in report.by_school
        ],
    )


@router.get(
    "/events/{event_id}/figures",
    response_model=EventFigures,
    summary="Every figure of an event: live, peak, views, watch time, per region and role, "
    "registrations and attendance, per school site",
)
async def event_figures(
    event_id: uuid.UUID, service: ServiceDep, schools: SchoolLabels, _who: EventFigureReader
) -> EventFigures:
    return figures_of(event_id, await service.event_report(event_id), schools.label)


@router.get("/events/{event_id}/live", response_model=LiveFigures, summary="Live viewers now")
async def live_figures(
    event_id: uuid.UUID, service: ServiceDep, _who: EventFigureReader
) -> LiveFigures:
    return _live(await service.live_now(event_id))


@router.get(
    "/events/{event_id}/live/feed",
    summary="Server-Sent Events: the live count, pushed at least once a second while it changes",
    response_class=StreamingResponse,
)
async def live_feed(
    event_id: uuid.UUID,
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    _who: EventFigureReader,
) -> StreamingResponse:
    interval = settings.live_feed_interval_s

    async def stream() -> AsyncIterator[str]:
        last: str | None = None
        last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            live = _live(await service.live_now(event_id))
            data = json.dumps(
                {
                    "viewers": live.viewers,
                    "peak": live.peak,
                    "peak_at": live.peak_at.isoformat() if live.peak_at else None,
                    "by_region": live.by_region,
                    "by_role": live.by_role,
                }
            )
            if data != last:
                yield f"event: live\ndata: {data}\n\n"
                last, last_sent = data, time.monotonic()
            elif time.monotonic() - last_sent > 15:
                yield ": nog verbonden\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(interval)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/events/{event_id}/attendance.csv",
    summary="Per-registrant attendance as CSV (UTF-8 with BOM, ';' for Dutch Excel)",
    response_class=Response,
)
async def attendance_csv(
    event_id: uuid.UUID, request: Request, service: ServiceDep, who: EventFigureReader
) -> Response:
    access = access_of(request)
    if not who.may(Capability.VIEW_REGISTRATIONS):
        await access.refuse(
            request, who, OUT_OF_ROLE, event_id=event_id,
            detail={"needs": str(Capability.VIEW_REGISTRATIONS)},
        )  # fmt: skip
    rows = []
    for line in (await service.attendance(event_id)).registrants:
        r = line.registrant
        rows.append(
            [str(r.registration_id), r.name, STATUS_NL.get(r.status, r.status), r.region_code,
             r.role, r.minutes_watched, "ja" if r.watched_live else "nee",
             "ja" if r.checked_in else "nee", "ja" if line.attended else "nee",
             ATTENDED_AS_NL.get(line.attended_as or "", ""), r.minutes_live, r.minutes_replay,
             "ja" if r.certificate else "nee"]
        )  # fmt: skip
    header = [
        "registratie", "naam", "status", "regio", "rol", "minuten gekeken", "live gekeken",
        "ingecheckt", "aanwezig", "aanwezig als", "minuten live", "minuten terugkijken",
        "certificaat",
    ]  # fmt: skip
    await access.audit.record(
        who, "attendee_csv", event_id=event_id, detail={"list": "attendance", "rows": len(rows)}
    )
    return Response(
        spreadsheet_csv(header, rows),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="aanwezigheid-{event_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


STATUS_NL = {"confirmed": "aangemeld", "waitlisted": "wachtlijst", "cancelled": "geannuleerd"}
ATTENDED_AS_NL = {"live": "live", "replay": "terugkijken"}


class BroadcastOut(BaseModel):
    event_id: str
    title: str
    series_number: int | None
    starts_at: datetime
    views: int
    average_live_viewers: float


class SeriesOut(BaseModel):
    series_code: str
    broadcasts: int
    total_views: int
    average_live_viewers: float
    trend: str
    trend_per_broadcast: float
    history: list[BroadcastOut]
    updated_at: datetime | None = Field(
        description="When the newest broadcast's figures were computed: they follow replay "
        "viewing after the end, so a series' totals are never final"
    )


@router.get("/series", response_model=list[str], summary="Series with ended broadcasts")
async def list_series(service: ServiceDep, _who: SeriesReader) -> list[str]:
    return await service.series_codes()


@router.get(
    "/series/{series_code}",
    response_model=SeriesOut,
    summary="A series: broadcasts, total views, average live viewers per broadcast, trend",
)
async def series_figures(series_code: str, service: ServiceDep, _who: SeriesReader) -> SeriesOut:
    figures = await service.series_report(series_code)
    if figures.broadcasts == 0:
        raise HTTPException(404, "Deze reeks heeft nog geen afgelopen uitzendingen")
    return SeriesOut(
        series_code=figures.series_code,
        broadcasts=figures.broadcasts,
        total_views=figures.total_views,
        average_live_viewers=round(figures.average_live_viewers, 2),
        trend=figures.trend,
        trend_per_broadcast=round(figures.trend_per_broadcast, 3),
        updated_at=figures.updated_at,
        history=[
            BroadcastOut(
                event_id=b.event_id,
                title=b.title,
                series_number=b.series_number,
                starts_at=b.starts_at,
                views=b.views,
                average_live_viewers=round(b.average_live_viewers, 2),
            )
            for b in figures.history
        ],
    )
