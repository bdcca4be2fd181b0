"""The organisers' view of transactional e-mail: what was sent about one registration, for
those who may see the registrations of its event."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request

from sto_notifications.api.deps import PartsDep
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs

router = APIRouter(prefix="/api", tags=["emails"])

RegistrationViewer = Annotated[Organiser, needs(Capability.VIEW_REGISTRATIONS)]


@router.get("/registrations/{registration_id}/emails", summary="Emails about one registration")
async def emails_for_registration(
    registration_id: uuid.UUID, parts: PartsDep, request: Request, who: RegistrationViewer
) -> list[dict[str, Any]]:
    if not who.everywhere:
        event_id = await parts.history.event_of(registration_id)
        if event_id is None:  # nothing here says whose it is: not theirs to read
            raise HTTPException(404, "Deze aanmelding is hier niet bekend")
        await access_of(request).check_event(request, who, event_id)
    return await parts.history.of_registration(registration_id)
