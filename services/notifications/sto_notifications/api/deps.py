"""Dependencies of the notifications routes: the parts ``bootstrap`` built (the organiser
check is the shared one, ``stolive_shared.organisers.web``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from sto_notifications.service import MailingService

if TYPE_CHECKING:
    from sto_notifications.bootstrap import Notifications


def get_parts(request: Request) -> Notifications:
    parts: Notifications = request.app.state.parts
    return parts


def get_mailings(request: Request) -> MailingService:
    return get_parts(request).mailings


PartsDep = Annotated["Notifications", Depends(get_parts)]
MailingsDep = Annotated[MailingService, Depends(get_mailings)]
