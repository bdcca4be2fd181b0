"""The registrations service's FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from sto_registrations.api import (
    by_hand,
    by_hand_pages,
    organiser_pages,
    organisers,
    pages,
    privacy_pages,
    registrations,
)
from sto_registrations.api.fast_sign_up import SignUpFastPath
from stolive_shared.web import service_app

if TYPE_CHECKING:
    from sto_registrations.bootstrap import Registrations


def create_app(parts: Registrations) -> FastAPI:
    runtime, settings, service = parts.runtime, parts.runtime.settings, parts.service

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What exists at startup (modules, schemas, the app) lives as long as the process:
        # out of the collector's sight, a full collection under load stays short (tail latency).
        gc.freeze()
        # Requests in flight keep thousands of young objects alive (freed by reference count,
        # rarely in cycles): at the default 700 the collector ran every ten sign-ups and took
        # 7 % of the CPU under load (python -m bench signups); at 10,000, under 0.5 %.
        gc.set_threshold(10_000, 10, 10)
        parts.schools.start()  # the first sign-up form has its list of schools
        yield
        await parts.schools.close()
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
    app.state.parts = parts
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
    app.include_router(by_hand.router)
    app.include_router(pages.router)
    app.include_router(privacy_pages.router)
    app.include_router(organiser_pages.router)
    app.include_router(by_hand_pages.router)

    # Innermost of the app's middleware (inside the request telemetry): see fast_sign_up.
    app.user_middleware.append(
        Middleware(
            SignUpFastPath,
            service=service,
            guard=parts.sign_up_guard,
            schools=parts.schools,
            route=next(
                route
                for route in registrations.router.routes
                if isinstance(route, APIRoute) and route.endpoint is registrations.sign_up
            ),
            exception_handlers=app.exception_handlers,
        )
    )
    return app
