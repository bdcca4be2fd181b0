"""The analytics service's FastAPI application (the read side; the Faust worker writes). Its
routes reach the read model only through the use cases in ``parts.service``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from sto_analytics.api import figures, internal, pages
from stolive_shared.web import service_app

if TYPE_CHECKING:
    from sto_analytics.bootstrap import Analytics


def create_app(parts: Analytics) -> FastAPI:
    runtime, settings = parts.runtime, parts.runtime.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        parts.schools.start()  # the figures per school name their sites from the start
        yield
        await parts.schools.close()

    app = service_app(
        title="STO Live analytics",
        service_name="analytics",
        settings=settings,
        pool=runtime.pool,
        lifespan=lifespan,
        description=(
            "Live viewers, views, peaks, watch time and attendance per event and per series, "
            "computed from the topics by the Faust workers. Organisers only (bearer token or "
            "organiser session), except the registration counts and the certificate page."
        ),
    )
    app.state.parts = parts
    app.include_router(runtime.health_router())
    app.include_router(figures.router)
    app.include_router(pages.router)
    app.include_router(internal.router)
    return app
