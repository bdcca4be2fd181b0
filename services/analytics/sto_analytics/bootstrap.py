"""How the analytics service is put together: the one place its parts are built. The API's
parts come from the shared runtime (``bootstrap``, run by ``DEFINITION``); the Faust worker
(``python -m sto_analytics worker``) is built by ``worker_app``: its agents read the topics
and write the read model the API serves, both through the use cases in ``service``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from sto_analytics import repository
from sto_analytics.app import create_app
from sto_analytics.config import AnalyticsSettings
from sto_analytics.service import AnalyticsService, ReadModelWriter
from stolive_shared.db import create_pool
from stolive_shared.events_client import EventsClient, SchoolDirectory
from stolive_shared.links import PersonalLinks
from stolive_shared.metrics import LIVE_VIEWERS
from stolive_shared.ratelimit import Limit, SharedLimits
from stolive_shared.runtime import Runtime, ServiceDefinition
from stolive_shared.urls import PublicUrls

if TYPE_CHECKING:
    import faust


@dataclass(frozen=True)
class Analytics:
    """Everything one analytics API process runs on."""

    runtime: Runtime[AnalyticsSettings]
    service: AnalyticsService
    schools: SchoolDirectory
    limits: SharedLimits
    check_limit: Limit  # lookups on the public certificate verify page


def bootstrap(runtime: Runtime[AnalyticsSettings]) -> Analytics:
    settings = runtime.settings
    return Analytics(
        runtime=runtime,
        service=AnalyticsService(
            runtime.pool,
            PersonalLinks(settings.link_key(), PublicUrls(settings.public_base_url)),
            min_minutes=settings.attendance_min_minutes,
            replay_days=settings.replay_attendance_days,
        ),
        schools=SchoolDirectory(
            EventsClient(settings.events_api_url), refresh_s=settings.school_list_refresh_s
        ),
        limits=SharedLimits(runtime.pool),
        check_limit=Limit(
            "certificate-check",
            settings.certificate_check_rate_per_minute,
            settings.certificate_check_rate_burst,
        ),
    )


async def refresh_live_viewers(conn: asyncpg.Connection) -> None:
    LIVE_VIEWERS.set(await repository.total_live_viewers(conn))


DEFINITION: ServiceDefinition[AnalyticsSettings, Analytics] = ServiceDefinition(
    name="analytics",
    settings_factory=AnalyticsSettings,
    migrations=Path(__file__).parent / "migrations",
    bootstrap=bootstrap,
    create_app=create_app,
    metrics_probes=(refresh_live_viewers,),
)


class LazyPool:
    """The worker's PostgreSQL pool, made on first use inside Faust's event loop (the app is
    built before that loop runs; nothing connects at import)."""

    def __init__(self, settings: AnalyticsSettings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_pool(
                    self._settings.database_url, self._settings.db_schema, max_size=4
                )
            return self._pool


def worker_app(settings: AnalyticsSettings) -> faust.App:
    """The Faust app with every table, agent and timer, writing through one ``ReadModelWriter``."""
    # Imported here, so the API process does not load Faust.
    from sto_analytics.streams import events, metrics, registrations, retention, viewers
    from sto_analytics.streams.app import create_faust_app
    from sto_analytics.streams.shared import Shared

    app = create_faust_app(settings)
    writer = ReadModelWriter(
        LazyPool(settings),
        schema=settings.db_schema,
        grace_s=settings.finalise_grace_s,
        min_minutes=settings.attendance_min_minutes,
        replay_days=settings.replay_attendance_days,
    )
    shared = Shared()
    registrations.register(app, settings, shared, writer)
    live = viewers.register(app, settings, shared, writer)
    events.register(app, settings, writer)
    retention.register(app, settings, writer)
    if settings.metrics_port:
        metrics.register(app, settings, live)
    return app
