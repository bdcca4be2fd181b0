"""``/watch/{event_id}``: the watch page, one page for every state of a broadcast, and the
real client of the beacon API.

Before the start it counts down (Amsterdam time), offers the sign-up form while registration is
open and the broadcast for the calendar (``/watch/{event_id}/agenda.ics``); live it plays the
stream, after the end the replay ("De terugblik volgt" until there is one), with a link to
all replays (``/terugblikken``); a cancelled broadcast says so. WebVTT captions the organiser
gave play as the ``<video>``'s ``<track>`` (its origin allowed by the page's CSP). What
plays, and when beacons go, is ``sto_events.player``; the page's script is
``static/player/watch.js``.

A personal watch link (``?v=``, a viewer id signed for this event:
``stolive_shared.links.watch_token``) makes the beacons count for that person; without one, or
with one that does not verify, the browser keeps an anonymous id. ``?hartslag=N`` sets the
heartbeat interval in seconds (tests use it); it is never below the throttle interval.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from sto_events import player
from sto_events.adapters.calendar_feed import build_feed
from sto_events.api.agenda import ICS_MEDIA_TYPE
from sto_events.api.deps import PartsDep, ServiceDep
from sto_events.api.rendering import pages, public_url
from sto_events.api.static import static_url
from sto_events.domain import Event
from sto_events.service import EventNotFound
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import base_path
from stolive_shared.web import allow_sources

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])

HLS_JS = "vendor/hls.js-1.7.4"  # scripts/vendor-player pins it


def heartbeat_seconds(requested: str | None, default: int, floor: float) -> int:
    """The page's heartbeat: the default, or a requested one between the throttle and 5 min."""
    try:
        wanted = int(requested) if requested else default
    except ValueError:
        wanted = default
    return max(int(-(-floor // 1)), min(wanted, 300))


async def _watchable(service: ServiceDep, event_id: uuid.UUID) -> Event | None:
    """The event, if it has a watch page: published once (a cancelled one says so)."""
    try:
        event = await service.get_event(event_id, public_only=False)
    except EventNotFound:
        return None
    return None if event.status == "draft" else event


@router.get("/watch/{event_id}", response_class=HTMLResponse)
async def watch(
    event_id: uuid.UUID, request: Request, service: ServiceDep, parts: PartsDep
) -> HTMLResponse:
    event = await _watchable(service, event_id)
    if event is None:
        return pages.message(
            request, "Uitzending niet gevonden", "Deze uitzending bestaat niet.", 404
        )
    now = service.clock()
    state = player.watch_state(event.status, event.replay_url)
    played = event.replay_url if state == "replay" else event.stream_url
    source = (
        player.stream_source(played, parts.urls.base)
        if state in ("upcoming", "live", "replay")
        else player.NO_SOURCE
    )
    allow_sources(request, source.page_sources())
    captions = player.captions_for(source, event.captions_url)
    if captions:
        allow_sources(request, player.captions_sources(captions))
    token = request.query_params.get("v", "")
    viewer = parts.links.viewer(event.id, token) if token else None
    base = base_path(request)
    return pages.render(
        request,
        "watch.html",
        event=event,
        state=state,
        source=source,
        captions=captions,
        replays_url=f"{base}/terugblikken",
        mode="replay" if state == "replay" else "live",
        sign_up=player.sign_up(
            event.status,
            event.ends_at,
            event.registration_opens_at,
            event.registration_closes_at,
            now,
        ),
        sign_up_url=parts.urls.sign_up_form(event.id),
        calendar_url=f"{base}/watch/{event.id}/agenda.ics",
        countdown=player.countdown_nl((event.starts_at - now).total_seconds()),
        now=now,
        viewer_id=viewer or "",
        viewer_token=token if viewer else "",
        heartbeat_s=heartbeat_seconds(
            request.query_params.get("hartslag"),
            parts.runtime.settings.heartbeat_s,
            parts.throttle.min_interval_s,
        ),
        beacon_url=f"{base}/api/beacons",
        status_url=f"{base}/api/events/{event.id}",
        player_script=static_url(request, "player/watch.js"),
        hls_script=static_url(request, f"{HLS_JS}/hls.min.js"),
        hls_worker=static_url(request, f"{HLS_JS}/hls.worker.js"),
        rules=player.script_rules(),
    )


@router.get("/watch/{event_id}/agenda.ics")
async def watch_calendar(event_id: uuid.UUID, request: Request, service: ServiceDep) -> Response:
    """The one broadcast as an iCalendar file, to add to a calendar (same UID as the feeds)."""
    event = await _watchable(service, event_id)
    if event is None or event.status == "cancelled":
        return Response("Onbekende uitzending", status_code=404, media_type="text/plain")
    page = public_url(request, f"/watch/{event.id}")
    body = build_feed(
        [event],
        name=event.title,
        description=f"STO Live: {event.title}",
        now=service.clock(),
        page_url=page,
        link_for={str(event.id): page},
    )
    return Response(
        body,
        media_type=ICS_MEDIA_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="sto-live.ics"',
            "Cache-Control": "no-cache",
        },
    )
