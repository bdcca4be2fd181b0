"""``/watch/{event_id}``: the player page, the real client of the beacon API.

The page plays the stream (a local placeholder animation in the demo: nothing is downloaded)
and reports join, heartbeat and leave from the browser. A personal watch link (``?v=``, a
viewer id signed for this event: ``stolive_shared.links.watch_token``) makes the beacons count
for that person; without one, or with one that does not verify, the browser keeps an
anonymous id. ``?hartslag=N`` sets the heartbeat interval in seconds (tests use it); it is
never below the throttle interval.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sto_events.api.deps import PartsDep, ServiceDep
from sto_events.api.rendering import pages
from sto_events.service import EventNotFound
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import base_path

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])


def heartbeat_seconds(requested: str | None, default: int, floor: float) -> int:
    """The page's heartbeat: the default, or a requested one between the throttle and 5 min."""
    try:
        wanted = int(requested) if requested else default
    except ValueError:
        wanted = default
    return max(int(-(-floor // 1)), min(wanted, 300))


@router.get("/watch/{event_id}", response_class=HTMLResponse)
async def watch(
    event_id: uuid.UUID, request: Request, service: ServiceDep, parts: PartsDep
) -> HTMLResponse:
    try:
        event = await service.get_event(event_id, public_only=True)
    except EventNotFound:
        return pages.message(
            request, "Uitzending niet gevonden", "Deze uitzending bestaat niet.", 404
        )
    token = request.query_params.get("v", "")
    viewer = parts.links.viewer(event.id, token) if token else None
    settings_heartbeat = parts.runtime.settings.heartbeat_s
    floor = parts.throttle.min_interval_s
    return pages.render(
        request,
        "watch.html",
        event=event,
        viewer_id=viewer or "",
        viewer_token=token if viewer else "",
        heartbeat_s=heartbeat_seconds(
            request.query_params.get("hartslag"), settings_heartbeat, floor
        ),
        beacon_url=f"{base_path(request)}/api/beacons",
        status_url=f"{base_path(request)}/api/events/{event.id}",
    )
