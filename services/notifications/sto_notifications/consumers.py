"""The notifications service's Kafka face and its background workers.

It follows three topics: registrations (seats, cancellations, erasure), events (moves,
cancellations, going live, reminder schedules) and analytics (who attended). Each handler
runs inside the consumer loop's transaction, so an email queued, a reminder planned and the
message marked handled commit together. Background workers: the scheduler (reminders and
mailings that fall due), the transactional email sender and the mailing sender, sharing one
SMTP pool and rate limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from sto_notifications.service import (
    EmailSender,
    MailingSender,
    NotificationsService,
    Scheduler,
)
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.events import (
    EventCancelled,
    EventEnded,
    EventPublished,
    EventRescheduled,
    EventUpdated,
    EventWentLive,
)
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationSignUpRepeated,
    RegistrationWaitlisted,
)
from stolive_shared.contracts.topics import ANALYTICS, EVENTS, REGISTRATIONS
from stolive_shared.messaging.consumer import Delivery, Handler, MessageConsumer
from stolive_shared.runtime import BackgroundWorker

if TYPE_CHECKING:
    from sto_notifications.bootstrap import Notifications


def message_handlers(service: NotificationsService) -> dict[Any, Handler]:
    """Which message type runs which use case (shared by the consumers and the tests)."""

    async def on_registration(conn: asyncpg.Connection, message: Any, _d: Delivery) -> None:
        previous = getattr(message, "previous_status", "")
        await service.on_registration(conn, message.type, message.registration, previous)

    async def on_repeated(conn: asyncpg.Connection, message: Any, _d: Delivery) -> None:
        await service.on_sign_up_repeated(conn, message.registration, message.message_id)

    async def on_event(conn: asyncpg.Connection, message: Any, _d: Delivery) -> None:
        extra = ""
        if isinstance(message, EventRescheduled):
            extra = message.previous_starts_at.isoformat()
        elif isinstance(message, EventCancelled):
            extra = message.reason
        await service.on_event(conn, message.type, message.event, extra)

    async def on_erased(conn: asyncpg.Connection, message: Any, _d: Delivery) -> None:
        await service.on_person_erased(conn, message.email_sha256, list(message.registration_ids))

    async def on_attendance(conn: asyncpg.Connection, message: Any, _d: Delivery) -> None:
        await service.on_attendance(
            conn,
            message.event_id,
            message.registration_id,
            message.attended,
            message.minutes_watched,
        )

    async def on_finalised(conn: asyncpg.Connection, message: Any, _d: Delivery) -> None:
        await service.on_attendance_finalised(conn, message.event_id)

    registration_types = (
        RegistrationConfirmed,
        RegistrationWaitlisted,
        RegistrationPromoted,
        RegistrationCancelled,
    )
    event_types = (
        EventPublished,
        EventUpdated,
        EventRescheduled,
        EventWentLive,
        EventEnded,
        EventCancelled,
    )
    handlers: dict[Any, Handler] = dict.fromkeys(registration_types, on_registration)
    handlers.update(dict.fromkeys(event_types, on_event))
    handlers[RegistrationSignUpRepeated] = on_repeated
    handlers[PersonErased] = on_erased
    handlers[AttendanceRecorded] = on_attendance
    handlers[AttendanceFinalised] = on_finalised
    return handlers


def create_consumers(parts: Notifications) -> list[MessageConsumer]:
    handlers = message_handlers(parts.reactions)
    settings = parts.runtime.settings
    # One consumer (and group) per topic: a group's name is also its key in
    # processed_messages, so "notifications.registrations" keeps the name it always had.
    return [
        MessageConsumer(
            name=f"notifications.{topic.name.removeprefix('sto.')}",
            topics=[topic.name],
            handlers={
                model: handler for model, handler in handlers.items() if model.TOPIC == topic.name
            },
            pool=parts.runtime.pool,
            kafka=settings.kafka,
            max_attempts=settings.consumer_max_attempts,
        )
        for topic in (REGISTRATIONS, EVENTS, ANALYTICS)
    ]


def create_workers(parts: Notifications) -> list[BackgroundWorker]:
    pool, settings = parts.runtime.pool, parts.runtime.settings
    return [
        Scheduler(pool, settings, parts.reactions, parts.mailings),
        EmailSender(pool, settings, parts.smtp),
        MailingSender(pool, settings, parts.smtp),
    ]
