"""The registrations service's Kafka face: it follows the events topic."""

from __future__ import annotations

from typing import Any

import asyncpg

from sto_registrations.app import build_service
from sto_registrations.config import RegistrationsSettings
from stolive_shared.contracts.events import EVENT_MESSAGES
from stolive_shared.contracts.topics import EVENTS
from stolive_shared.messaging.consumer import Delivery, Handler, MessageConsumer
from stolive_shared.runtime import Runtime


def create_consumers(runtime: Runtime[RegistrationsSettings]) -> list[MessageConsumer]:
    service = build_service(runtime)

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
