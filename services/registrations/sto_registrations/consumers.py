"""The registrations service's Kafka face: it follows the events topic, each change applied
(``RegistrationsService.apply_event``) inside the consumer's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from stolive_shared.contracts.events import EVENT_MESSAGES, EventMessage
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.messaging.consumer import MessageConsumer, on

if TYPE_CHECKING:
    from sto_registrations.bootstrap import Registrations


def create_consumers(parts: Registrations) -> list[MessageConsumer]:
    runtime, service = parts.runtime, parts.service

    async def follow(conn: asyncpg.Connection, message: EventMessage) -> None:
        await service.apply_event(service.repository_on(conn), message.event)

    return [
        MessageConsumer(
            name="registrations.events",
            topics=[EVENTS.name],
            handlers=dict(on(model, follow) for model in EVENT_MESSAGES),
            pool=runtime.pool,
            kafka=runtime.settings.kafka,
            max_attempts=runtime.settings.consumer_max_attempts,
        )
    ]
