"""The registrations service's Kafka face: it follows the events topic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from stolive_shared.contracts.events import EVENT_MESSAGES
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.messaging.consumer import Delivery, Handler, MessageConsumer

if TYPE_CHECKING:
    from sto_registrations.bootstrap import Registrations


def create_consumers(parts: Registrations) -> list[MessageConsumer]:
    runtime, service = parts.runtime, parts.service

    async def on_event_changed(conn: asyncpg.Connection, message: Any, _delivery: Delivery) -> None:
        await service.apply_event(conn, message.event)

    handlers: dict[Any, Handler] = dict.fromkeys(EVENT_MESSAGES, on_event_changed)
    return [
        MessageConsumer(
            name="registrations.events",
            topics=[EVENTS.name],
            handlers=handlers,
            pool=runtime.pool,
            kafka=runtime.settings.kafka,
            max_attempts=runtime.settings.consumer_max_attempts,
        )
    ]
