"""SQL of the e-mail queue and its senders: queue, claim, requeue what a dead sender left,
record outcomes, for transactional e-mails and mailing recipients alike; suppressions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sto_notifications.adapters.rendering import RenderedEmail
from sto_notifications.domain import EmailRequest

# Advisory-lock namespace of sender processes (the first key of pg_advisory_lock(int, int)).
SENDER_LOCK_CLASS = 7306
# A suppressed person: no newsletter goes there ({col}: the column holding their person key).
SUPPRESSED_SQL = "EXISTS (SELECT 1 FROM suppressed x WHERE x.person_key = {col})"


@dataclass(frozen=True)
class QueuedEmail:
    id: uuid.UUID
    kind: str
    event_id: uuid.UUID | None
    registration_id: uuid.UUID | None
    recipient: str
    recipient_key: str | None
    subject: str
    body_text: str
    body_html: str
    attempts: int
    ics: str | None = None
    ics_method: str | None = None
    traceparent: str | None = None


async def queue_email(
    conn: asyncpg.Connection,
    request: EmailRequest,
    rendered: RenderedEmail,
    recipient_key: str,
    *,
    ics: str | None = None,
    ics_method: str | None = None,
    at: datetime | None = None,
    traceparent: str | None = None,
) -> uuid.UUID | None:
    """Queue once per dedup key; the new email's id, or None when it was queued before."""
    email_id = uuid.uuid4()
    inserted = await conn.fetchval(
        """INSERT INTO emails (id, dedup_key, kind, event_id, registration_id, recipient, subject,
               body_text, body_html, ics, ics_method, next_attempt_at, status, traceparent,
               recipient_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now()),
                   CASE WHEN EXISTS (SELECT 1 FROM suppressed
                                     WHERE person_key = $14 AND scope = 'all')
                        THEN 'suppressed' ELSE 'queued' END, $13, $14)
           ON CONFLICT (dedup_key) DO NOTHING RETURNING true""",
        email_id,
        request.dedup_key,
        request.kind,
        request.event_id,
        request.registration_id,
        request.recipient,
        rendered.subject,
        rendered.text,
        rendered.html,
        ics,
        ics_method,
        at,
        traceparent,
        recipient_key,
    )
    return email_id if inserted else None


async def claim_due(
    conn: asyncpg.Connection, limit: int, now: datetime, claimed_by: int
) -> list[QueuedEmail]:
    """Due emails for this sender; suppressed addresses are settled here, not sent."""
    rows = await conn.fetch(
        """WITH picked AS (
               SELECT id FROM emails WHERE status = 'queued' AND next_attempt_at <= $2
               ORDER BY next_attempt_at, created_at LIMIT $1 FOR UPDATE SKIP LOCKED),
           claimed AS (
               UPDATE emails e SET
                   status = CASE WHEN EXISTS (SELECT 1 FROM suppressed s
                                              WHERE s.person_key = e.recipient_key
                                                AND s.scope = 'all')
                                 THEN 'suppressed' ELSE 'sending' END,
                   attempts = e.attempts + 1, claimed_by = $3
               FROM picked WHERE e.id = picked.id
               RETURNING e.id, e.kind, e.event_id, e.registration_id, e.recipient,
                         e.recipient_key, e.subject,
                         e.body_text, e.body_html, e.attempts, e.ics, e.ics_method,
                         e.traceparent, e.status)
           SELECT * FROM claimed WHERE status = 'sending'""",
        limit,
        now,
        claimed_by,
    )
    return [QueuedEmail(**{k: v for k, v in dict(row).items() if k != "status"}) for row in rows]


# Claims of senders whose PostgreSQL session is gone: their key is no longer held as a lock.
_UNHELD = f"""claimed_by NOT IN (
                  SELECT objid::bigint FROM pg_locks
                  WHERE locktype = 'advisory' AND classid = {SENDER_LOCK_CLASS}
                    AND objsubid = 2 AND granted
                    AND database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database()))"""


async def orphaned_claimers(conn: asyncpg.Connection) -> set[int]:
    """Keys of senders that hold rows in 'sending' but no longer hold their lock."""
    rows = await conn.fetch(
        f"""SELECT claimed_by FROM emails WHERE status = 'sending' AND {_UNHELD}
            UNION SELECT claimed_by FROM mailing_recipients
                  WHERE status = 'sending' AND {_UNHELD}"""
    )
    return {int(r["claimed_by"]) for r in rows}


async def requeue_orphaned(conn: asyncpg.Connection, claimers: list[int]) -> tuple[int, int]:
    """Rows claimed by these senders go back to 'queued', unless one of them holds its lock
    again: (emails, mailing recipients) requeued."""
    where = f"status = 'sending' AND claimed_by = ANY($1::bigint[]) AND {_UNHELD}"
    emails: str = await conn.execute(f"UPDATE emails SET status = 'queued' WHERE {where}", claimers)
    recipients: str = await conn.execute(
        f"UPDATE mailing_recipients SET status = 'queued' WHERE {where}", claimers
    )
    return int(emails.split()[-1]), int(recipients.split()[-1])


async def mark_sent(conn: asyncpg.Connection, email_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE emails SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1",
        email_id,
    )


async def mark_retry(
    conn: asyncpg.Connection, email_id: uuid.UUID, at: datetime, error: str
) -> None:
    await conn.execute(
        "UPDATE emails SET status = 'queued', next_attempt_at = $2, last_error = $3 WHERE id = $1",
        email_id,
        at,
        error[:1000],
    )


async def mark_failed(conn: asyncpg.Connection, email_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE emails SET status = 'failed', last_error = $2 WHERE id = $1", email_id, error[:1000]
    )


async def record_bounce(
    conn: asyncpg.Connection,
    person_key: str,
    kind: str,
    smtp_code: int | None,
    source: str,
    at: datetime,
    window_start: datetime,
) -> tuple[int, int]:
    """Keep one bounce (and drop the person's older than the window): their (hard, soft)
    bounces within the window, this one included."""
    await conn.execute(
        "DELETE FROM bounces WHERE person_key = $1 AND bounced_at < $2", person_key, window_start
    )
    await conn.execute(
        """INSERT INTO bounces (person_key, kind, smtp_code, source, bounced_at)
           VALUES ($1, $2, $3, $4, $5)""",
        person_key,
        kind,
        smtp_code,
        source,
        at,
    )
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE kind = 'hard') AS hard,
                  count(*) FILTER (WHERE kind = 'soft') AS soft
           FROM bounces WHERE person_key = $1 AND bounced_at >= $2""",
        person_key,
        window_start,
    )
    assert row is not None
    return int(row["hard"]), int(row["soft"])


async def suppress(
    conn: asyncpg.Connection, person_key: str, reason: str, scope: str = "all"
) -> bool:
    """Add to the suppression list; a wider scope replaces a narrower one. True if new."""
    result = await conn.fetchval(
        """INSERT INTO suppressed (person_key, reason, scope) VALUES ($1, $2, $3)
           ON CONFLICT (person_key) DO UPDATE SET scope = 'all', reason = EXCLUDED.reason
               WHERE EXCLUDED.scope = 'all' AND suppressed.scope <> 'all'
           RETURNING xmax = 0""",
        person_key,
        reason,
        scope,
    )
    return bool(result)


async def is_suppressed(conn: asyncpg.Connection, person_key: str, *, newsletter: bool) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM suppressed WHERE person_key = $1 AND (scope = 'all' OR $2)",
        person_key,
        newsletter,
    )
    return bool(found)


async def email_status(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT id, kind, status, attempts, created_at, sent_at FROM emails"
        " WHERE registration_id = $1 ORDER BY created_at",
        registration_id,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True)
class ClaimedRecipient:
    id: uuid.UUID
    mailing_id: uuid.UUID
    email: str
    person_key: str | None
    name: str
    attempts: int


async def claim_recipients(
    conn: asyncpg.Connection, limit: int, now: datetime, claimed_by: int
) -> list[ClaimedRecipient]:
    """A small batch of due recipients of sending mailings; suppressed ones settled here."""
    rows = await conn.fetch(
        f"""WITH picked AS (
                SELECT r.id FROM mailing_recipients r
                JOIN mailings m ON m.id = r.mailing_id AND m.status = 'sending'
                WHERE r.status = 'queued' AND r.next_attempt_at <= $2
                ORDER BY r.next_attempt_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED),
            claimed AS (
                UPDATE mailing_recipients r SET
                    status = CASE WHEN {SUPPRESSED_SQL.format(col="r.person_key")}
                                  THEN 'suppressed' ELSE 'sending' END,
                    attempts = r.attempts + 1, claimed_by = $3
                FROM picked WHERE r.id = picked.id
                RETURNING r.id, r.mailing_id, r.email, r.person_key, r.name, r.attempts,
                          r.status)
            SELECT id, mailing_id, email, person_key, name, attempts FROM claimed
            WHERE status = 'sending'""",
        limit,
        now,
        claimed_by,
    )
    return [ClaimedRecipient(**dict(r)) for r in rows]


async def mark_recipients_sent(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
    await conn.execute(
        "UPDATE mailing_recipients SET status = 'sent', sent_at = now(), last_error = NULL"
        " WHERE id = ANY($1::uuid[])",
        ids,
    )


async def recipient_retry(
    conn: asyncpg.Connection, recipient_id: uuid.UUID, at: datetime, error: str
) -> None:
    await conn.execute(
        "UPDATE mailing_recipients SET status = 'queued', next_attempt_at = $2, last_error = $3"
        " WHERE id = $1",
        recipient_id,
        at,
        error[:1000],
    )


async def recipient_failed(conn: asyncpg.Connection, recipient_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE mailing_recipients SET status = 'failed', last_error = $2 WHERE id = $1",
        recipient_id,
        error[:1000],
    )


async def recipient_person(conn: asyncpg.Connection, recipient_id: uuid.UUID) -> str | None:
    """The person key of a mailing's recipient (their unsubscribe link names the row)."""
    key: str | None = await conn.fetchval(
        "SELECT person_key FROM mailing_recipients WHERE id = $1", recipient_id
    )
    return key
