"""The notifications service's FastAPI application: email status, mailings (organisers) and
the public newsletter pages (subscribe, confirm, unsubscribe, read online)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI

from sto_notifications import repository
from sto_notifications.api.organiser import organiser_router
from sto_notifications.api.public import public_router
from stolive_shared.organisers.web import OrganiserDep
from stolive_shared.web import service_app

if TYPE_CHECKING:
    from sto_notifications.bootstrap import Notifications


def create_app(parts: Notifications) -> FastAPI:
    runtime, settings = parts.runtime, parts.runtime.settings
    app = service_app(
        title="STO Live notifications",
        description="Confirmation, reminder and change emails; newsletters with unsubscribe.",
        service_name="notifications",
        settings=settings,
        pool=runtime.pool,
    )
    app.include_router(runtime.health_router())
    router = APIRouter(prefix="/api", tags=["emails"])

    @router.get("/registrations/{registration_id}/emails", summary="Emails about one registration")
    async def emails_for_registration(
        registration_id: uuid.UUID, _organiser: OrganiserDep
    ) -> list[dict[str, Any]]:
        async with runtime.pool.acquire() as conn:
            return await repository.email_status(conn, registration_id)

    app.include_router(router)
    app.include_router(organiser_router(parts.mailings))
    app.include_router(
        public_router(
            parts.mailings,
            parts.reactions,
            settings.link_key(),
            settings.subscribe_min_fill_s,
            (parts.limits, parts.subscribe_limit),
        )
    )
    return app
