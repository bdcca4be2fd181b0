"""The notifications service's FastAPI application: email status, mailings (organisers) and
the public newsletter pages (subscribe, confirm, unsubscribe, read online)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from sto_notifications.api import emails, internal, organiser, organiser_pages, public
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
    app.state.parts = parts
    app.include_router(emails.router)
    app.include_router(organiser.router)
    app.include_router(organiser_pages.router)
    app.include_router(public.router)
    app.include_router(internal.router)
    return app
