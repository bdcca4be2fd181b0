"""The organisers' event hub: one page per event with its counts side by side (registered,
seats left, waiting list, checked in, watching now) and one click to everything about it:
attendees and check-in, figures, a mailing to its registrants, attendees or no-shows, its edit
page, its sign-up form, watch page and replay; after the end, the form that publishes or
changes the replay (``organiser_pages``'s "terugblik" step, which comes back here). The
counts come from the services that own them (``adapters.counts``), so the hub never shows a
number of its own making.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sto_events.adapters.counts import EventCounts
from sto_events.api.deps import ServiceDep
from sto_events.api.rendering import pages
from sto_events.service import EventNotFound
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import needs_page

router = APIRouter(prefix="/organiser", include_in_schema=False)

EventViewer = Annotated[Organiser, needs_page(Capability.VIEW_EVENTS, event=True)]


@router.get("/evenementen/{event_id}/overzicht", response_class=HTMLResponse)
async def event_hub(
    event_id: uuid.UUID, request: Request, service: ServiceDep, organiser: EventViewer
) -> Response:
    try:
        event = await service.get_event(event_id, public_only=False)
    except EventNotFound:
        return pages.message(request, "Niet gevonden", "Dit evenement bestaat niet.", 404)
    counts: EventCounts = request.app.state.parts.counts
    parts = request.app.state.parts
    return pages.render(
        request,
        "organiser/hub.html",
        organiser=organiser,
        event=event,
        counts=await counts.of(event_id, live=event.status in ("live", "ended")),
        sign_up_url=parts.urls.sign_up_form(event.id),
        watch_url=parts.urls.watch_page(event.id),
        notice="De terugblik is gepubliceerd." if "terugblik" in request.query_params else None,
    )
