"""Events from the events topic into the read model, and the finalisation of ended ones.

Each events message carries the whole event; the read model keeps the highest revision and
the first moments it went live and ended (``occurred_at`` of those messages), written before
the message is acked. A timer on every worker finalises ended events once their grace period
has passed (``service.finalise_due_events``: row-locked, so exactly one worker does each).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import faust

from sto_analytics import read_model as rm
from sto_analytics.config import AnalyticsSettings
from sto_analytics.service import finalise_due_events
from sto_analytics.streams.dead_letters import DeadLetters
from sto_analytics.streams.shared import Shared
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.events import EventEnded, EventSnapshot, EventWentLive
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.errors import PoisonMessage

log = logging.getLogger(__name__)


def register(app: faust.App, settings: AnalyticsSettings, shared: Shared) -> None:
    source = app.topic(
        EVENTS.name, key_serializer="raw", value_serializer="raw", partitions=EVENTS.partitions
    )
    dead_letters = DeadLetters(app, EVENTS, "analytics.events")

    @app.agent(source, name="follow-events")
    async def follow_events(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            try:
                message = decode(event.value)
            except PoisonMessage as exc:
                await dead_letters.send(event, exc)
                continue
            snapshot = getattr(message, "event", None)
            if not isinstance(snapshot, EventSnapshot):
                continue
            went_live_at = message.occurred_at if isinstance(message, EventWentLive) else None
            ended_at = message.occurred_at if isinstance(message, EventEnded) else None
            while True:
                try:
                    pool = await shared.pool()
                    async with pool.acquire() as conn:
                        await rm.save_event(
                            conn,
                            snapshot.model_dump(),
                            went_live_at=went_live_at,
                            ended_at=ended_at,
                        )
                    break
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("event not written, retrying: %r", exc)
                    await asyncio.sleep(1.0)

    @app.timer(interval=settings.finalise_check_interval_s)
    async def finalise() -> None:
        try:
            pool = await shared.pool()
            await finalise_due_events(
                pool,
                schema=settings.db_schema,
                grace_s=settings.finalise_grace_s,
                min_minutes=settings.attendance_min_minutes,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("finalisation postponed: %r", exc)
