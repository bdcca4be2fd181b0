"""What the retention job removes from notifications' tables, one batch at a time (rows taken
``FOR UPDATE SKIP LOCKED``, so two workers never take the same). Each function returns how
many rows it changed; once changed, a row no longer matches.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg


def _count(result: str) -> int:
    return int(result.split()[-1])


async def remove_lapsed_subscribers(conn: asyncpg.Connection, before: datetime, limit: int) -> int:
    """Newsletter sign-ups never confirmed, and unsubscribed ones, since before ``before``.
    An unsubscribed person stays off every mailing: the suppression list keeps their keyed
    hash, not their address."""
    return _count(
        await conn.execute(
            """DELETE FROM subscribers WHERE id IN (
                   SELECT id FROM subscribers
                   WHERE (status = 'pending' AND coalesce(consented_at, created_at) < $1)
                      OR (status = 'unsubscribed' AND unsubscribed_at < $1)
                   LIMIT $2 FOR UPDATE SKIP LOCKED)""",
            before,
            limit,
        )
    )


async def remove_old_email_content(conn: asyncpg.Connection, before: datetime, limit: int) -> int:
    """The bodies and calendar objects of e-mails made before ``before`` and done with; the
    fact that one was sent (kind, subject, when, the person's keyed hash) stays. An e-mail
    that belongs to no registration loses its address too; one that does keeps it until the
    registration is anonymised or erased."""
    return _count(
        await conn.execute(
            """UPDATE emails SET body_text = '', body_html = '', ics = NULL, last_error = NULL,
                   recipient = CASE WHEN registration_id IS NULL THEN 'gewist' ELSE recipient END
               WHERE id IN (
                   SELECT id FROM emails
                   WHERE created_at < $1 AND body_text <> ''
                     AND status IN ('sent', 'failed', 'suppressed')
                   LIMIT $2 FOR UPDATE SKIP LOCKED)""",
            before,
            limit,
        )
    )


async def remove_old_mailing_recipients(
    conn: asyncpg.Connection, before: datetime, limit: int
) -> int:
    """The addresses and names on mailings finished (or cancelled) before ``before``; each
    row keeps its status and keyed hash, so the mailing's figures and a person's history
    stay. The address becomes the row's own id: the (mailing, address) pair stays unique."""
    return _count(
        await conn.execute(
            """UPDATE mailing_recipients SET email = id::text, name = '', last_error = NULL
               WHERE id IN (
                   SELECT r.id FROM mailing_recipients r JOIN mailings m ON m.id = r.mailing_id
                   WHERE m.status IN ('sent', 'cancelled')
                     AND coalesce(m.finished_at, m.updated_at) < $1
                     AND r.status NOT IN ('queued', 'sending') AND r.email <> r.id::text
                   LIMIT $2 FOR UPDATE OF r SKIP LOCKED)""",
            before,
            limit,
        )
    )
