"""Events from the events topic into the read model, and the finalisation of ended ones.

Each events message carries the whole event; the read model keeps the highest revision and
the first moments it went live and ended (``occurred_at`` of those messages), written before
the message is acked. A timer on every worker finalises ended events once their grace period
has passed (``ReadModelWriter.finalise_due_events``: row-locked, so exactly one worker does
each), then brings finalised events that saw viewing since up to date, late replay attendees
included (``refresh_finalised_events``, the same way).
"""

from __future__ import annotations

import logging

import asyncpg
import faust

from sto_analytics.config import AnalyticsSettings
from sto_analytics.service import ReadModelWriter
from sto_analytics.streams.dead_letters import DeadLetters
from sto_analytics.streams.shared import until_written
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.events import (
    EventCancelled,
    EventEnded,
    EventPublished,
    EventRescheduled,
    EventUpdated,
    EventWentLive,
)
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.errors import PoisonMessage

log = logging.getLogger(__name__)

# Every message of the events topic: each carries the whole event as it is now.
EventMessage = (
    EventPublished | EventUpdated | EventRescheduled | EventWentLive | EventEnded | EventCancelled
)


def register(app: faust.App, settings: AnalyticsSettings, writer: ReadModelWriter) -> None:
    source = app.topic(
        EVENTS.name, key_serializer="raw", value_serializer="raw", partitions=EVENTS.partitions
    )
    dead_letters = DeadLetters(app, EVENTS, "analytics.events")

    @app.agent(source, name="follow-events")
    async def follow_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                message = decode(event.value)
            except PoisonMessage as exc:
                await dead_letters.send(event, exc)
                continue
            if isinstance(message, EventMessage):
                await record(message)

    async def record(message: EventMessage) -> None:
        went_live_at = message.occurred_at if isinstance(message, EventWentLive) else None
        ended_at = message.occurred_at if isinstance(message, EventEnded) else None
        await until_written(
            "event",
            lambda: writer.record_event(
                message.event, went_live_at=went_live_at, ended_at=ended_at
            ),
        )

    @app.timer(interval=settings.finalise_check_interval_s)
    async def finalise() -> None:
        try:
            await writer.finalise_due_events()
            await writer.refresh_finalised_events()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("finalisation postponed: %r", exc)
