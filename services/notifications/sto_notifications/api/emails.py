"""The organisers' view of transactional e-mail: what was sent about one registration."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from sto_notifications.api.deps import PartsDep
from stolive_shared.organisers.web import OrganiserDep

router = APIRouter(prefix="/api", tags=["emails"])


@router.get("/registrations/{registration_id}/emails", summary="Emails about one registration")
async def emails_for_registration(
    registration_id: uuid.UUID, parts: PartsDep, _organiser: OrganiserDep
) -> list[dict[str, Any]]:
    return await parts.history.of_registration(registration_id)
