"""Dependencies of the registrations routes: the service, and the organiser's identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from sto_registrations.service import RegistrationsService


async def get_service(request: Request) -> RegistrationsService:
    service: RegistrationsService = request.app.state.registrations
    return service


async def require_organiser(request: Request) -> str:
    """The organiser's name (site-wide session cookie or bearer token), else 401/403."""
    check: Callable[[Request], Awaitable[str]] = request.app.state.require_organiser
    return await check(request)


ServiceDep = Annotated[RegistrationsService, Depends(get_service)]
OrganiserDep = Annotated[str, Depends(require_organiser)]
