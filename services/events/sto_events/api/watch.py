"""``/watch/{event_id}``: the player page, the real client of the beacon API.

The page plays the stream (a local placeholder animation in the demo: nothing is downloaded)
and reports join, heartbeat and leave from the browser. The viewer id comes from a personal
join link (``?v=``), else the browser keeps an anonymous one. ``?hartslag=N`` sets the
heartbeat interval in seconds (tests use it); it is never below the throttle interval.
"""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sto_events.api.deps import ServiceDep
from sto_events.api.rendering import pages
from sto_events.service import EventNotFound
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import base_path

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])

VIEWER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def heartbeat_seconds(requested: str | None, default: int, floor: float) -> int:
    """The page's heartbeat: the default, or a requested one between the throttle and 5 min."""
    try:
        wanted = int(requested) if requested else default
    except ValueError:
        wanted = default
    return max(int(-(-floor // 1)), min(wanted, 300))


@router.get("/watch/{event_id}", response_class=HTMLResponse)
async def watch(event_id: uuid.UUID, request: Request, service: ServiceDep) -> HTMLResponse:
    try:
        event = await service.get_event(event_id, public_only=True)
    except EventNotFound:
        return pages.message(
            request, "Uitzending niet gevonden", "Deze uitzending bestaat niet.", 404
        )
    viewer = request.query_params.get("v", "")
    settings_heartbeat: int = request.app.state.heartbeat_s
    floor: float = request.app.state.viewer_throttle.min_interval_s
    return pages.render(
        request,
        "watch.html",
        event=event,
        viewer_id=viewer if VIEWER_ID.match(viewer) else "",
        heartbeat_s=heartbeat_seconds(
            request.query_params.get("hartslag"), settings_heartbeat, floor
        ),
        beacon_url=f"{base_path(request)}/api/beacons",
        status_url=f"{base_path(request)}/api/events/{event.id}",
    )
