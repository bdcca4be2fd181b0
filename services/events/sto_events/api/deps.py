"""Dependencies of the events routes: the service and the organiser credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sto_events.service import EventsService, NotAuthenticated
from stolive_shared.organisers import SESSION_COOKIE, organiser_from_cookie

_bearer = HTTPBearer(
    auto_error=False, description="Organiser token (`python -m sto_events.tokens create NAME`)"
)


def get_service(request: Request) -> EventsService:
    service: EventsService = request.app.state.events
    return service


ServiceDep = Annotated[EventsService, Depends(get_service)]


async def require_organiser(
    request: Request,
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """A bearer token checked against our own table, or the site-wide session cookie."""
    from_cookie = organiser_from_cookie(
        request.app.state.link_secret, request.cookies.get(SESSION_COOKIE)
    )
    if from_cookie:
        return from_cookie
    if credentials is None:
        raise HTTPException(
            401, "Inloggen als organisator is nodig", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return await service.authenticate(credentials.credentials)
    except NotAuthenticated:
        raise HTTPException(403, "Deze sleutel geeft geen toegang") from None


OrganiserDep = Annotated[str, Depends(require_organiser)]
