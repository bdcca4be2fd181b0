"""What the platform's other services may ask of this one (never through the public address,
``stolive_shared.internal``): everything held about one person's registrations, for their
export."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sto_analytics.api.deps import ServiceDep
from stolive_shared.internal import INTERNAL

router = APIRouter(prefix="/internal", include_in_schema=False, dependencies=[INTERNAL])


@router.get("/people")
async def person(
    service: ServiceDep,
    registration_id: Annotated[list[uuid.UUID], Query(max_length=500)] = [],  # noqa: B006
) -> dict[str, Any]:
    return {"registrations": await service.about_person(registration_id)}


@router.get("/events/{event_id}/live")
async def live_viewers(event_id: uuid.UUID, service: ServiceDep) -> dict[str, int]:
    """Viewers now and the peak, for the organisers' event hub (served by the events service)."""
    live = await service.live_now(event_id)
    return {"viewers": live.viewers, "peak": live.peak}
