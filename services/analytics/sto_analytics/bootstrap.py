"""How the analytics service is put together: the one place its parts are built, and how the
shared runtime runs its API. The Faust worker (``python -m sto_analytics worker``) is built
here too (``worker_app``): it reads the topics and writes the read model the API serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from sto_analytics import read_model
from sto_analytics.app import create_app
from sto_analytics.config import AnalyticsSettings
from stolive_shared.links import PersonalLinks
from stolive_shared.metrics import LIVE_VIEWERS
from stolive_shared.runtime import Runtime, ServiceDefinition
from stolive_shared.urls import PublicUrls


@dataclass(frozen=True)
class Analytics:
    """Everything one analytics API process runs on."""

    runtime: Runtime[AnalyticsSettings]
    links: PersonalLinks


def bootstrap(runtime: Runtime[AnalyticsSettings]) -> Analytics:
    settings = runtime.settings
    return Analytics(
        runtime=runtime,
        links=PersonalLinks(settings.link_key(), PublicUrls(settings.public_base_url)),
    )


async def refresh_live_viewers(conn: asyncpg.Connection) -> None:
    LIVE_VIEWERS.set(await read_model.total_live_viewers(conn))


DEFINITION: ServiceDefinition[AnalyticsSettings, Analytics] = ServiceDefinition(
    name="analytics",
    settings_factory=AnalyticsSettings,
    migrations=Path(__file__).parent / "migrations",
    bootstrap=bootstrap,
    create_app=create_app,
    metrics_probes=(refresh_live_viewers,),
)
