"""Dependencies of the events routes: the service (the organiser check is the shared one,
``stolive_shared.organisers.web``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from sto_events.service import EventsService

if TYPE_CHECKING:
    from sto_events.bootstrap import Events


def get_service(request: Request) -> EventsService:
    service: EventsService = request.app.state.events
    return service


def get_parts(request: Request) -> Events:
    parts: Events = request.app.state.parts
    return parts


ServiceDep = Annotated[EventsService, Depends(get_service)]
PartsDep = Annotated["Events", Depends(get_parts)]
