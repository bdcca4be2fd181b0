"""The registrations service's FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from sto_registrations.api import organiser_pages, organisers, pages, registrations
from sto_registrations.api.abuse import FormTokens, SignUpGuard, SignUpLimit
from sto_registrations.api.fast_sign_up import SignUpFastPath
from sto_registrations.api.pages import RegionDirectory
from sto_registrations.config import RegistrationsSettings
from sto_registrations.service import (
    RegistrationsService,
)
from stolive_shared.ratelimit import Limit, SharedLimits
from stolive_shared.runtime import Runtime
from stolive_shared.web import service_app


def build_service(runtime: Runtime[RegistrationsSettings]) -> RegistrationsService:
    settings = runtime.settings
    return RegistrationsService(
        pool=runtime.pool,
        schema=settings.db_schema,
        link_secret=settings.link_key(),
        public_base_url=settings.public_base_url.rstrip("/"),
        max_in_flight=settings.signup_batches_in_flight,
        repeat_notice_interval=timedelta(minutes=settings.repeat_notice_interval_minutes),
    )


def create_app(runtime: Runtime[RegistrationsSettings]) -> FastAPI:
    settings = runtime.settings
    service = build_service(runtime)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What exists at startup (modules, schemas, the app) lives as long as the process:
        # out of the collector's sight, a full collection under load stays short (tail latency).
        gc.freeze()
        # Requests in flight keep thousands of young objects alive (freed by reference count,
        # rarely in cycles): at the default 700 the collector ran every ten sign-ups and took
        # 7 % of the CPU under load (python -m bench signups); at 10,000, under 0.5 %.
        gc.set_threshold(10_000, 10, 10)
        yield
        await service.close()  # answer every sign-up already taken before stopping

    app = service_app(
        title="STO Live registrations",
        description="Sign-up forms and API, capacity and waiting list, cancellation, check-in,"
        " attendee lists and privacy requests. Texts meant for people are in Dutch.",
        service_name="registrations",
        settings=settings,
        pool=runtime.pool,
        lifespan=lifespan,
    )
    app.state.registrations = service
    app.state.regions = RegionDirectory(settings.events_api_url)
    app.state.sign_up_limit = SignUpLimit(
        SharedLimits(runtime.pool),
        Limit("sign-up", settings.signup_rate_per_minute, settings.signup_rate_burst),
    )
    app.state.sign_up_guard = SignUpGuard(
        app.state.sign_up_limit,
        FormTokens.from_secret(
            settings.session_key(),
            settings.signup_form_token_min_age_s,
            settings.signup_form_token_max_age_s,
        ),
    )
    if settings.signup_api_origins.strip():
        # Partner pages may call the public sign-up API from the browser: no cookies.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.signup_api_origins.split(",") if o.strip()],
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            allow_credentials=False,
        )
    app.include_router(runtime.health_router())
    app.include_router(registrations.router)
    app.include_router(organisers.router)
    app.include_router(pages.router)
    app.include_router(organiser_pages.router)

    # Innermost of the app's middleware (inside the request telemetry): see fast_sign_up.
    app.user_middleware.append(
        Middleware(
            SignUpFastPath,
            service=service,
            guard=app.state.sign_up_guard,
            route=next(
                route
                for route in registrations.router.routes
                if isinstance(route, APIRoute) and route.endpoint is registrations.sign_up
            ),
            exception_handlers=app.exception_handlers,
        )
    )
    return app
