"""How the shared runtime runs the analytics API; the Faust worker runs on its own."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from sto_analytics import read_model
from sto_analytics.app import create_app
from sto_analytics.config import AnalyticsSettings
from stolive_shared.metrics import LIVE_VIEWERS
from stolive_shared.runtime import ServiceDefinition


async def refresh_live_viewers(conn: asyncpg.Connection) -> None:
    LIVE_VIEWERS.set(await read_model.total_live_viewers(conn))


DEFINITION: ServiceDefinition[AnalyticsSettings] = ServiceDefinition(
    name="analytics",
    settings_factory=AnalyticsSettings,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    metrics_probes=(refresh_live_viewers,),
)
