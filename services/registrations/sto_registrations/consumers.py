"""The registrations service's Kafka face and its background worker: it follows the events
topic, each change applied (``RegistrationsService.apply_event``) inside the consumer's
transaction, and analytics' attendance (``apply_attendance``: the certificate link on the
manage page); the retention job anonymises the registrations of events that ended longer
ago than ``registration_retention_days``."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

from stolive_shared.contracts.analytics import AttendanceRecorded
from stolive_shared.contracts.events import EVENT_MESSAGES, EventMessage
from stolive_shared.contracts.topics import ANALYTICS, EVENTS
from stolive_shared.messaging.consumer import MessageConsumer, on
from stolive_shared.organisers.audit import AuditLog
from stolive_shared.retention import RetentionJob, RetentionRule
from stolive_shared.runtime import BackgroundWorker

if TYPE_CHECKING:
    from sto_registrations.bootstrap import Registrations


def create_consumers(parts: Registrations) -> list[MessageConsumer]:
    runtime, service = parts.runtime, parts.service

    async def follow(conn: asyncpg.Connection, message: EventMessage) -> None:
        await service.apply_event(service.repository_on(conn), message.event)

    async def attendance(conn: asyncpg.Connection, message: AttendanceRecorded) -> None:
        await service.apply_attendance(service.repository_on(conn), message)

    return [
        MessageConsumer(
            name="registrations.events",
            topics=[EVENTS.name],
            handlers=dict(on(model, follow) for model in EVENT_MESSAGES),
            pool=runtime.pool,
            kafka=runtime.settings.kafka,
            max_attempts=runtime.settings.consumer_max_attempts,
            transient_retry_s=runtime.settings.consumer_transient_retry_s,
        ),
        MessageConsumer(
            name="registrations.attendance",
            topics=[ANALYTICS.name],
            handlers=dict([on(AttendanceRecorded, attendance)]),
            pool=runtime.pool,
            kafka=runtime.settings.kafka,
            max_attempts=runtime.settings.consumer_max_attempts,
            transient_retry_s=runtime.settings.consumer_transient_retry_s,
        ),
    ]


def create_workers(parts: Registrations) -> list[BackgroundWorker]:
    settings, service = parts.runtime.settings, parts.service
    retention = timedelta(days=settings.registration_retention_days)

    async def anonymise(limit: int) -> int:
        return await service.anonymise_expired(retention, limit)

    # The organisers' audit log is shared by every service; this job keeps it to its period.
    audit = AuditLog(parts.runtime.pool, settings.service_name)

    async def forget_old_audit_rows(limit: int) -> int:
        return await audit.remove_older_than(settings.audit_retention_days, limit)

    return [
        RetentionJob(
            [
                RetentionRule("registrations_anonymised", anonymise),
                RetentionRule("organiser_audit", forget_old_audit_rows),
            ],
            settings.retention_interval_s,
        )
    ]
