"""Analytics' rule for the retention job (``stolive_shared.retention``): certificates are
kept ``certificate_retention_days`` after they were issued. A Faust timer runs it on every
worker; the rows a batch takes are locked (SKIP LOCKED), so two workers never share one.
Names go earlier, when registrations announces them anonymised (``registrations``)."""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg
import faust

from sto_analytics.config import AnalyticsSettings
from sto_analytics.service import ReadModelWriter
from stolive_shared.clock import utc_now
from stolive_shared.retention import RetentionJob, RetentionRule

log = logging.getLogger(__name__)


def register(app: faust.App, settings: AnalyticsSettings, writer: ReadModelWriter) -> None:
    kept = timedelta(days=settings.certificate_retention_days)

    async def expire_certificates(limit: int) -> int:
        return await writer.expire_certificates(utc_now() - kept, limit)

    job = RetentionJob(
        [RetentionRule("certificates", expire_certificates)], settings.retention_interval_s
    )

    @app.timer(interval=settings.retention_interval_s)
    async def apply_retention() -> None:
        try:
            await job.run_once()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("retention postponed: %r", exc)
