"""The notifications service's FastAPI application: email status, mailings (organisers) and
the public newsletter pages (subscribe, confirm, unsubscribe, read online)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, FastAPI

from sto_notifications import repository
from sto_notifications.api.organiser import organiser_router
from sto_notifications.api.public import public_router
from sto_notifications.config import NotificationsSettings
from sto_notifications.consumers import notifications_service
from sto_notifications.service import MailingService
from stolive_shared.organisers.web import OrganiserDep
from stolive_shared.ratelimit import Limit, SharedLimits
from stolive_shared.runtime import Runtime
from stolive_shared.web import service_app


def create_app(runtime: Runtime[NotificationsSettings]) -> FastAPI:
    settings = runtime.settings
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
    secret = settings.link_key()
    # The pool exists before the app serves: the services are built on first use of each
    # request through the runtime, never at import.
    mailings = MailingService(runtime.pool, settings)
    app.include_router(organiser_router(mailings))
    app.include_router(
        public_router(
            mailings,
            notifications_service(settings),
            secret,
            settings.subscribe_min_fill_s,
            (
                SharedLimits(runtime.pool),
                Limit(
                    "newsletter",
                    settings.subscribe_rate_per_minute,
                    settings.subscribe_rate_burst,
                ),
            ),
        )
    )
    return app
