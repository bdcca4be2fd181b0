"""Dependencies of the events routes: the service (the organiser check is the shared one,
``stolive_shared.organisers.web``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sto_events.service import EventsService


def get_service(request: Request) -> EventsService:
    service: EventsService = request.app.state.events
    return service


ServiceDep = Annotated[EventsService, Depends(get_service)]
