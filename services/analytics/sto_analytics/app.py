"""The analytics service's FastAPI application (the read side; Faust workers write)."""

from __future__ import annotations

from fastapi import FastAPI

from sto_analytics.api import figures, pages
from sto_analytics.config import AnalyticsSettings
from stolive_shared.runtime import Runtime
from stolive_shared.web import service_app


def create_app(runtime: Runtime[AnalyticsSettings]) -> FastAPI:
    settings = runtime.settings
    app = service_app(
        title="STO Live analytics",
        service_name="analytics",
        settings=settings,
        pool=runtime.pool,
        description=(
            "Live viewers, views, peaks, watch time and attendance per event and per series, "
            "computed from the topics by the Faust workers. Organisers only (bearer token or "
            "organiser session), except the registration counts and the certificate page."
        ),
    )
    app.state.pool = runtime.pool
    app.state.settings = settings
    app.include_router(runtime.health_router())
    app.include_router(figures.router)
    app.include_router(pages.router)
    return app
