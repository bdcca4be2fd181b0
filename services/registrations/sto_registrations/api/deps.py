"""Dependencies of the registrations routes: the service. Who may use an organiser route is
declared on the route itself (``stolive_shared.organisers.web``: ``needs``, ``needs_page``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sto_registrations.service import RegistrationsService

__all__ = ["ServiceDep", "get_service"]


async def get_service(request: Request) -> RegistrationsService:
    service: RegistrationsService = request.app.state.registrations
    return service


ServiceDep = Annotated[RegistrationsService, Depends(get_service)]
