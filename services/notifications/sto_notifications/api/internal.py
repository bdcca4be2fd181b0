"""What the platform's other services may ask of this one (never through the public address,
``stolive_shared.internal``): everything held about one person, for their export."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from sto_notifications.api.deps import PartsDep
from stolive_shared.internal import INTERNAL

router = APIRouter(prefix="/internal", include_in_schema=False, dependencies=[INTERNAL])


@router.get("/people/{person_key}")
async def person(
    person_key: str,
    parts: PartsDep,
    registration_id: Annotated[list[uuid.UUID], Query(max_length=500)] = [],  # noqa: B006
) -> dict[str, Any]:
    return await parts.history.about_person(person_key, registration_id)
