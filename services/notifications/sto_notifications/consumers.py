"""The notifications service's Kafka face and its background workers.

It follows three topics: registrations (seats, cancellations, erasure), events (changes,
moves, cancellations, going live, reminder schedules, replays) and analytics (who attended,
certificates). Each handler runs inside the consumer loop's transaction, so an email queued,
a reminder planned and the message marked handled commit together. Background workers: the
scheduler (reminders and mailings that fall due), the transactional email sender and the
mailing sender, sharing one SMTP pool and rate limit, and the retention job
(``service.retention``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sto_notifications.service import (
    EmailSender,
    MailingSender,
    NotificationsService,
    Scheduler,
    retention_rules,
)
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import (
    EventCancelled,
    EventEnded,
    EventPublished,
    EventReplayPublished,
    EventRescheduled,
    EventUpdated,
    EventWentLive,
)
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationConfirmationResent,
    RegistrationConfirmed,
    RegistrationCorrected,
    RegistrationExportRequested,
    RegistrationPromoted,
    RegistrationsAnonymised,
    RegistrationSignUpRepeated,
    RegistrationWaitlisted,
)
from stolive_shared.contracts.topics import ANALYTICS, EVENTS, REGISTRATIONS
from stolive_shared.messaging.consumer import Handler, MessageConsumer, on
from stolive_shared.retention import RetentionJob
from stolive_shared.runtime import BackgroundWorker

if TYPE_CHECKING:
    from sto_notifications.bootstrap import Notifications


def message_handlers(service: NotificationsService) -> dict[type[Message], Handler]:
    """Which message runs which use case (shared by the consumers and the tests)."""
    return dict(
        [
            on(RegistrationConfirmed, service.on_seat),
            on(RegistrationPromoted, service.on_seat),
            on(RegistrationWaitlisted, service.on_waitlisted),
            on(RegistrationCancelled, service.on_registration_cancelled),
            on(RegistrationSignUpRepeated, service.on_sign_up_repeated),
            on(RegistrationCorrected, service.on_registration_corrected),
            on(RegistrationConfirmationResent, service.on_confirmation_resent),
            on(RegistrationExportRequested, service.on_export_requested),
            on(PersonErased, service.on_person_erased),
            on(RegistrationsAnonymised, service.on_registrations_anonymised),
            on(EventPublished, service.on_event_changed),
            on(EventUpdated, service.on_event_changed),
            on(EventEnded, service.on_event_changed),
            on(EventRescheduled, service.on_event_rescheduled),
            on(EventWentLive, service.on_event_went_live),
            on(EventCancelled, service.on_event_cancelled),
            on(EventReplayPublished, service.follow_ups.on_replay_published),
            on(AttendanceRecorded, service.follow_ups.on_attendance),
            on(AttendanceFinalised, service.follow_ups.on_attendance_finalised),
        ]
    )


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
            transient_retry_s=settings.consumer_transient_retry_s,
        )
        for topic in (REGISTRATIONS, EVENTS, ANALYTICS)
    ]


def create_workers(parts: Notifications) -> list[BackgroundWorker]:
    pool, settings = parts.runtime.pool, parts.runtime.settings
    return [
        Scheduler(pool, settings, parts.reactions, parts.mailings),
        EmailSender(pool, settings, parts.smtp),
        MailingSender(pool, settings, parts.smtp),
        RetentionJob(retention_rules(pool, settings), settings.retention_interval_s),
    ]
