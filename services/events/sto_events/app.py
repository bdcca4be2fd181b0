"""The events service's FastAPI application.

The lifespan owns the beacon path's long-lived parts: the Kafka producer (started in the
background, so the API serves pages and writes while the broker is away) and the status cache
with the viewer throttle, tidied every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from sto_events.api import (
    agenda,
    beacons,
    console_access,
    dead_letters,
    event_hub,
    events,
    organiser_pages,
    schools,
    statements,
    static,
    watch,
)
from sto_events.api.beacons import BeaconEndpoint, Receive, Scope, Send
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.messaging.dead_letters import DeadLetters
from stolive_shared.web import service_app

if TYPE_CHECKING:
    from sto_events.bootstrap import Events


class EventsApp(FastAPI):
    """The FastAPI app, with beacon requests taken off before the middleware stack."""

    beacon_endpoint: BeaconEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.beacon_endpoint
        if endpoint is not None and endpoint.wants(scope):
            await endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(parts: Events) -> FastAPI:
    runtime, settings = parts.runtime, parts.runtime.settings
    statuses, throttle, publisher = parts.statuses, parts.throttle, parts.publisher

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(*CONNECTION_ERRORS, TimeoutError):
            await statuses.refresh()  # a database away now is retried by the loop below
        publisher.start()
        tasks = [
            asyncio.create_task(
                statuses.run(lambda: throttle.forget_older_than(time.monotonic())),
                name="event-statuses",
            ),
        ]
        # Everything built at start-up lives as long as the process: keeping it out of the
        # collector's sweeps shortens the pauses that show up in the beacon p99.
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await publisher.stop()

    app = service_app(
        title="STO Live events",
        description="STO LIVE broadcasts, regional and supra-regional meetings, the national "
        "day, the public agenda and feeds, and the viewer beacons.",
        service_name="events",
        settings=settings,
        pool=runtime.pool,
        app_class=EventsApp,
        lifespan=lifespan,
    )
    app.state.events = parts.service
    app.state.parts = parts
    app.state.dead_letters = DeadLetters(settings.kafka, runtime.pool)
    app.beacon_endpoint = parts.beacons

    async def status() -> dict[str, Any]:
        body = await runtime.status()
        body["beacons"] = {**publisher.stats(), "viewers_tracked": len(throttle)}
        body["event_statuses_loaded"] = statuses.loaded
        return body

    app.include_router(runtime.health_router(status))
    app.include_router(beacons.router)
    app.include_router(events.router)
    app.include_router(agenda.router)
    app.include_router(watch.router)
    app.include_router(static.router)
    app.include_router(console_access.router)
    app.include_router(dead_letters.router)
    app.include_router(event_hub.router)
    app.include_router(organiser_pages.router)
    app.include_router(schools.router)
    app.include_router(schools.pages_router)
    app.include_router(statements.router)
    return app
