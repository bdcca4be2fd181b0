"""Dependencies of the registrations routes: the service (the organiser check is the shared
one, ``stolive_shared.organisers.web``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sto_registrations.service import RegistrationsService
from stolive_shared.organisers.web import OrganiserDep

__all__ = ["OrganiserDep", "ServiceDep", "get_service"]


async def get_service(request: Request) -> RegistrationsService:
    service: RegistrationsService = request.app.state.registrations
    return service


ServiceDep = Annotated[RegistrationsService, Depends(get_service)]
