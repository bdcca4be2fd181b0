"""Routes for events: public reads, organiser writes and lifecycle steps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from sto_events.api.deps import ServiceDep
from sto_events.api.schemas import (
    Cancellation,
    Ending,
    EventCreate,
    EventPublic,
    EventUpdate,
    RegionIn,
    RegionPublic,
    ReplayIn,
    Reschedule,
    SeriesIn,
    SeriesPublic,
)
from sto_events.domain import Region, Series, parse_regions_csv, to_utc
from sto_events.repository import EventFilter
from stolive_shared.contracts.events import EventKind, EventStatus
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import PUBLIC, OrganiserDep, access_of, needs

Viewer = Annotated[Organiser, needs(Capability.VIEW_EVENTS)]
EventViewer = Annotated[Organiser, needs(Capability.VIEW_EVENTS, event=True)]
Planner = Annotated[Organiser, needs(Capability.EDIT_EVENTS)]
EventPlanner = Annotated[Organiser, needs(Capability.EDIT_EVENTS, event=True)]
ProgrammeSetup = Annotated[Organiser, needs(Capability.PROGRAMME_SETUP)]

router = APIRouter(prefix="/api", tags=["events"])


@router.post("/events", status_code=201, response_model=EventPublic, summary="Create a draft event")
async def create_event(
    body: EventCreate, request: Request, service: ServiceDep, who: Planner
) -> EventPublic:
    """Webinars join a series (STO LIVE unless named) and get the next broadcast number. A
    regional programme leader names their own regions only."""
    if not who.everywhere:
        await access_of(request).check_regions(request, who, body.region_codes)
    return EventPublic.of(await service.create_event(body.to_event()))


class EventQuery:
    """The filters of an event list: kind, status, region, series and a period."""

    def __init__(
        self,
        kind: EventKind | None = None,
        status: EventStatus | None = None,
        region: Annotated[str | None, Query(max_length=40)] = None,
        series: Annotated[str | None, Query(max_length=40)] = None,
        starts_from: Annotated[
            datetime | None, Query(description="With an offset, or Amsterdam wall-clock time")
        ] = None,
        starts_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> None:
        self.kind, self.status, self.region, self.series = kind, status, region, series
        self.starts_from, self.starts_before, self.limit = starts_from, starts_before, limit

    def filter(self, *, public_only: bool, who: Organiser | None = None) -> EventFilter:
        return EventFilter(
            within_regions=None if who is None or who.everywhere else who.regions,
            kind=self.kind,
            status=self.status,
            region_code=self.region,
            series_code=self.series,
            starts_from=_utc_or_none(self.starts_from, "starts_from"),
            starts_before=_utc_or_none(self.starts_before, "starts_before"),
            public_only=public_only,
            limit=self.limit,
        )


@router.get(
    "/events",
    response_model=list[EventPublic],
    summary="List published events",
    dependencies=[PUBLIC],
)
async def list_events(
    service: ServiceDep, query: Annotated[EventQuery, Depends()]
) -> list[EventPublic]:
    """Published, live and ended events; a region's list includes the national events."""
    return [EventPublic.of(e) for e in await service.list_events(query.filter(public_only=True))]


@router.get(
    "/organiser/events", response_model=list[EventPublic], summary="List all events, drafts too"
)
async def list_all_events(
    service: ServiceDep, who: Viewer, query: Annotated[EventQuery, Depends()]
) -> list[EventPublic]:
    """Every event in the organiser's scope (a regional leader: their regions' events)."""
    chosen = query.filter(public_only=False, who=who)
    return [EventPublic.of(e) for e in await service.list_events(chosen)]


@router.get(
    "/organiser/events/{event_id}", response_model=EventPublic, summary="One event, drafts too"
)
async def get_any_event(event_id: uuid.UUID, service: ServiceDep, _who: EventViewer) -> EventPublic:
    return EventPublic.of(await service.get_event(event_id, public_only=False))


@router.get(
    "/organiser/me", summary="Who this organiser credential belongs to", tags=["organisers"]
)
async def whoami(organiser: OrganiserDep) -> dict[str, object]:
    """Scripts can check which account a token belongs to, its role and its scope."""
    return {
        "organiser": organiser.email,
        "name": organiser.name,
        "role": organiser.role,
        "regions": sorted(organiser.regions),
        "events": sorted(str(e) for e in organiser.events),
    }


@router.get(
    "/events/{event_id}",
    response_model=EventPublic,
    summary="One published event",
    dependencies=[PUBLIC],
)
async def get_event(event_id: uuid.UUID, service: ServiceDep) -> EventPublic:
    return EventPublic.of(await service.get_event(event_id, public_only=True))


@router.patch("/events/{event_id}", response_model=EventPublic, summary="Change an event's details")
async def update_event(
    event_id: uuid.UUID,
    body: EventUpdate,
    request: Request,
    service: ServiceDep,
    who: EventPlanner,
) -> EventPublic:
    changes = body.changes()
    if not who.everywhere and "region_codes" in changes:
        await access_of(request).check_regions(request, who, body.region_codes or ())
    return EventPublic.of(await service.update(event_id, changes))


@router.post("/events/{event_id}/publish", response_model=EventPublic, summary="Publish a draft")
async def publish(event_id: uuid.UUID, service: ServiceDep, _who: EventPlanner) -> EventPublic:
    return EventPublic.of(await service.publish(event_id))


@router.post(
    "/events/{event_id}/go-live", response_model=EventPublic, summary="The broadcast starts"
)
async def go_live(event_id: uuid.UUID, service: ServiceDep, _who: EventPlanner) -> EventPublic:
    return EventPublic.of(await service.go_live(event_id))


@router.post("/events/{event_id}/end", response_model=EventPublic, summary="The event is over")
async def end(
    event_id: uuid.UUID, body: Ending, service: ServiceDep, _who: EventPlanner
) -> EventPublic:
    replay = str(body.replay_url) if body.replay_url else None
    return EventPublic.of(await service.end(event_id, replay))


@router.put(
    "/events/{event_id}/replay",
    response_model=EventPublic,
    summary="Set or change the replay of an ended event and its captions",
    responses={409: {"description": "The event has not ended (or was cancelled)"}},
)
async def publish_replay(
    event_id: uuid.UUID, body: ReplayIn, service: ServiceDep, who: EventPlanner
) -> EventPublic:
    """At any time after the end, as often as needed: each new address or new captions write
    ``event.replay_published`` (with the previous address) and an audit row; the same values
    again change nothing. Captions left out stay as they are; ``null`` removes them."""
    changed = await service.publish_replay(event_id, str(body.replay_url), who, body.captions())
    return EventPublic.of(changed)


@router.post("/events/{event_id}/cancel", response_model=EventPublic, summary="Cancel an event")
async def cancel(
    event_id: uuid.UUID, body: Cancellation, service: ServiceDep, _who: EventPlanner
) -> EventPublic:
    return EventPublic.of(await service.cancel(event_id, body.reason))


@router.post(
    "/events/{event_id}/reschedule", response_model=EventPublic, summary="Move an event in time"
)
async def reschedule(
    event_id: uuid.UUID, body: Reschedule, service: ServiceDep, _who: EventPlanner
) -> EventPublic:
    starts_at, ends_at = to_utc(body.starts_at, "starts_at"), to_utc(body.ends_at, "ends_at")
    return EventPublic.of(await service.reschedule(event_id, starts_at, ends_at))


@router.get(
    "/regions",
    response_model=list[RegionPublic],
    tags=["regions"],
    summary="The STO regions",
    dependencies=[PUBLIC],
)
async def list_regions(service: ServiceDep) -> list[RegionPublic]:
    return [RegionPublic(**r.__dict__) for r in await service.regions()]


@router.put("/regions", tags=["regions"], summary="Add or update STO regions")
async def import_regions(
    body: list[RegionIn], service: ServiceDep, _who: ProgrammeSetup
) -> dict[str, int]:
    count = await service.import_regions([Region(**r.model_dump()) for r in body])
    return {"imported": count}


@router.post(
    "/regions/import",
    tags=["regions"],
    summary="Add or update STO regions from CSV (code,name,province,supra_region)",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {}}}},
)
async def import_regions_csv(
    request: Request, service: ServiceDep, _who: ProgrammeSetup
) -> dict[str, int]:
    """The whole file or nothing: a bad line refuses the import with its line number."""
    raw = await request.body()
    if len(raw) > 1_000_000:
        raise HTTPException(413, "Het bestand is te groot")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    return {"imported": await service.import_regions(parse_regions_csv(text))}


@router.get(
    "/series",
    response_model=list[SeriesPublic],
    tags=["series"],
    summary="Webinar series",
    dependencies=[PUBLIC],
)
async def list_series(service: ServiceDep) -> list[SeriesPublic]:
    return [SeriesPublic(**s.__dict__) for s in await service.series()]


@router.put("/series/{code}", tags=["series"], summary="Add or rename a webinar series")
async def save_series(
    body: SeriesIn,
    service: ServiceDep,
    _who: ProgrammeSetup,
    code: str = Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=40),
) -> SeriesPublic:
    series = Series(code=code, title=body.title, description=body.description)
    await service.save_series(series)
    return SeriesPublic(**series.__dict__)


def _utc_or_none(moment: datetime | None, field: str) -> datetime | None:
    return to_utc(moment, field) if moment is not None else None
