"""Notifications' rules for the retention job (``stolive_shared.retention``), their periods
from the settings: unconfirmed and unsubscribed newsletter sign-ups, the content of sent
e-mails and the addresses on finished mailings. A registration's own copies go when
registrations announces it anonymised (``NotificationsService.on_registrations_anonymised``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg

from sto_notifications import repository
from sto_notifications.config import NotificationsSettings
from stolive_shared.clock import Clock, utc_now
from stolive_shared.retention import RetentionRule

Removal = Callable[[asyncpg.Connection, datetime, int], Awaitable[int]]


def retention_rules(
    pool: asyncpg.Pool, settings: NotificationsSettings, clock: Clock = utc_now
) -> list[RetentionRule]:
    def rule(name: str, remove: Removal, days: int) -> RetentionRule:
        async def apply(limit: int) -> int:
            async with pool.acquire() as conn, conn.transaction():
                return await remove(conn, clock() - timedelta(days=days), limit)

        return RetentionRule(name, apply)

    return [
        rule(
            "lapsed_subscribers",
            repository.remove_lapsed_subscribers,
            settings.unconfirmed_subscription_days,
        ),
        rule(
            "email_content",
            repository.remove_old_email_content,
            settings.mail_content_retention_days,
        ),
        rule(
            "mailing_recipients",
            repository.remove_old_mailing_recipients,
            settings.mail_content_retention_days,
        ),
    ]
