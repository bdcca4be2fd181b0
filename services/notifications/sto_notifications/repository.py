"""SQL for emails, reminders, the event and registration copies, subscribers and mailings.

Opens no transactions: ``service.py`` decides what commits together. Addresses are stored
lower-cased where they identify someone (subscribers, mailing recipients, suppressions).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sto_notifications.domain import Audience, EmailRequest, PlannedReminder
from sto_notifications.rendering import RenderedEmail

# Advisory-lock namespace of sender processes (the first key of pg_advisory_lock(int, int)).
SENDER_LOCK_CLASS = 7306


# --- transactional emails --------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedEmail:
    id: uuid.UUID
    kind: str
    event_id: uuid.UUID | None
    registration_id: uuid.UUID | None
    recipient: str
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
               body_text, body_html, ics, ics_method, next_attempt_at, status, traceparent)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now()),
                   CASE WHEN EXISTS (SELECT 1 FROM suppressions
                                     WHERE email = lower($6) AND scope = 'all')
                        THEN 'suppressed' ELSE 'queued' END, $13)
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
                   status = CASE WHEN EXISTS (SELECT 1 FROM suppressions s
                                              WHERE s.email = lower(e.recipient)
                                                AND s.scope = 'all')
                                 THEN 'suppressed' ELSE 'sending' END,
                   attempts = e.attempts + 1, claimed_by = $3
               FROM picked WHERE e.id = picked.id
               RETURNING e.id, e.kind, e.event_id, e.registration_id, e.recipient, e.subject,
                         e.body_text, e.body_html, e.attempts, e.ics, e.ics_method,
                         e.traceparent, e.status)
           SELECT * FROM claimed WHERE status = 'sending'""",
        limit,
        now,
        claimed_by,
    )
    return [QueuedEmail(**{k: v for k, v in dict(row).items() if k != "status"}) for row in rows]


_ORPHANED = f"""status = 'sending' AND claimed_by IS NOT NULL AND claimed_by NOT IN (
                   SELECT objid::bigint FROM pg_locks
                   WHERE locktype = 'advisory' AND classid = {SENDER_LOCK_CLASS}
                     AND objsubid = 2 AND granted
                     AND database = (SELECT oid FROM pg_database
                                     WHERE datname = current_database()))"""


async def requeue_orphaned(conn: asyncpg.Connection) -> tuple[int, int]:
    """Rows claimed by a sender whose process is gone (its advisory lock went with its
    connection) go back to 'queued': (emails, mailing recipients) requeued."""
    emails: str = await conn.execute(f"UPDATE emails SET status = 'queued' WHERE {_ORPHANED}")
    recipients: str = await conn.execute(
        f"UPDATE mailing_recipients SET status = 'queued' WHERE {_ORPHANED}"
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


async def hard_failures(conn: asyncpg.Connection, recipient: str) -> int:
    count: int = await conn.fetchval(
        """SELECT (SELECT count(*) FROM emails
                   WHERE lower(recipient) = lower($1) AND status = 'failed')
                + (SELECT count(*) FROM mailing_recipients
                   WHERE email = lower($1) AND status = 'failed')""",
        recipient,
    )
    return count


async def suppress(conn: asyncpg.Connection, email: str, reason: str, scope: str = "all") -> bool:
    """Add to the suppression list; a wider scope replaces a narrower one. True if new."""
    result = await conn.fetchval(
        """INSERT INTO suppressions (email, reason, scope) VALUES (lower($1), $2, $3)
           ON CONFLICT (email) DO UPDATE SET scope = 'all', reason = EXCLUDED.reason
               WHERE EXCLUDED.scope = 'all' AND suppressions.scope <> 'all'
           RETURNING xmax = 0""",
        email,
        reason,
        scope,
    )
    return bool(result)


async def is_suppressed(conn: asyncpg.Connection, email: str, *, newsletter: bool) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM suppressions WHERE email = lower($1) AND (scope = 'all' OR $2)",
        email,
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


# --- events and registrations as this service knows them -------------------------------------


@dataclass(frozen=True)
class EventRow:
    event_id: uuid.UUID
    revision: int
    status: str
    title: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    replay_url: str | None
    reminder_offsets_hours: tuple[float, ...]


@dataclass(frozen=True)
class RegistrationRow:
    registration_id: uuid.UUID
    event_id: uuid.UUID
    status: str
    name: str
    email: str
    viewer_id: str
    manage_url: str
    ics_sequence: int


def _event(row: asyncpg.Record) -> EventRow:
    data = dict(row)
    data["reminder_offsets_hours"] = tuple(data["reminder_offsets_hours"])
    return EventRow(**data)


_EVENT_COLUMNS = (
    "event_id, revision, status, title, starts_at, ends_at, venue, replay_url,"
    " reminder_offsets_hours"
)


async def upsert_event(
    conn: asyncpg.Connection, event: EventRow, *, from_view: bool = False
) -> bool:
    """Store the event unless a newer revision is known; True when stored.

    An event message replaces a stored row of the same revision (it may carry the reminder
    schedule a registration's view lacks); a registration's view only fills in an event not
    seen yet or newer times and title, keeping the stored reminder schedule."""
    if from_view:
        applied = await conn.fetchval(
            f"""INSERT INTO event_schedule ({_EVENT_COLUMNS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (event_id) DO UPDATE SET revision = EXCLUDED.revision,
                    title = EXCLUDED.title, starts_at = EXCLUDED.starts_at,
                    ends_at = EXCLUDED.ends_at, updated_at = now()
                WHERE event_schedule.revision < EXCLUDED.revision
                RETURNING true""",
            *_event_args(event),
        )
        return bool(applied)
    applied = await conn.fetchval(
        f"""INSERT INTO event_schedule ({_EVENT_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (event_id) DO UPDATE SET revision = EXCLUDED.revision,
                status = EXCLUDED.status, title = EXCLUDED.title,
                starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
                venue = EXCLUDED.venue, replay_url = EXCLUDED.replay_url,
                reminder_offsets_hours = EXCLUDED.reminder_offsets_hours, updated_at = now()
            WHERE event_schedule.revision <= EXCLUDED.revision
            RETURNING true""",
        *_event_args(event),
    )
    return bool(applied)


def _event_args(event: EventRow) -> tuple[Any, ...]:
    return (
        event.event_id,
        event.revision,
        event.status,
        event.title,
        event.starts_at,
        event.ends_at,
        event.venue,
        event.replay_url,
        list(event.reminder_offsets_hours),
    )


async def get_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> EventRow | None:
    row = await conn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM event_schedule WHERE event_id = $1", event_id
    )
    return _event(row) if row else None


async def upsert_registration(
    conn: asyncpg.Connection,
    *,
    registration_id: uuid.UUID,
    event_id: uuid.UUID,
    status: str,
    name: str,
    email: str,
    role: str | None,
    region_code: str | None,
    viewer_id: str,
    manage_url: str,
) -> None:
    await conn.execute(
        """INSERT INTO registrations (registration_id, event_id, status, name, email, role,
               region_code, viewer_id, manage_url)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (registration_id) DO UPDATE SET status = EXCLUDED.status,
               name = EXCLUDED.name, email = EXCLUDED.email, role = EXCLUDED.role,
               region_code = EXCLUDED.region_code, viewer_id = EXCLUDED.viewer_id,
               manage_url = EXCLUDED.manage_url, updated_at = now()""",
        registration_id,
        event_id,
        status,
        name,
        email,
        role,
        region_code,
        viewer_id,
        manage_url,
    )


_REGISTRATION_COLUMNS = (
    "registration_id, event_id, status, name, email, viewer_id, manage_url, ics_sequence"
)


async def get_registration(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> RegistrationRow | None:
    row = await conn.fetchrow(
        f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE registration_id = $1",
        registration_id,
    )
    return RegistrationRow(**dict(row)) if row else None


async def registrations_of(
    conn: asyncpg.Connection, event_id: uuid.UUID, statuses: tuple[str, ...]
) -> list[RegistrationRow]:
    rows = await conn.fetch(
        f"""SELECT {_REGISTRATION_COLUMNS} FROM registrations
            WHERE event_id = $1 AND status = ANY($2::text[]) ORDER BY registration_id""",
        event_id,
        list(statuses),
    )
    return [RegistrationRow(**dict(r)) for r in rows]


async def set_ics_sequence(
    conn: asyncpg.Connection, registration_id: uuid.UUID, sequence: int
) -> None:
    """Record the SEQUENCE of the calendar object just queued (it only ever grows)."""
    await conn.execute(
        "UPDATE registrations SET ics_sequence = greatest(ics_sequence, $2)"
        " WHERE registration_id = $1",
        registration_id,
        sequence,
    )


# --- reminders -------------------------------------------------------------------------------


async def plan_reminders(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    event_id: uuid.UUID,
    revision: int,
    planned: list[PlannedReminder],
) -> None:
    """Make the registration's reminders match the plan: new offsets added, moved ones
    re-armed for the new revision, offsets no longer in the schedule dropped. A reminder
    already queued for this very revision and moment stays as it is."""
    await conn.execute(
        """UPDATE reminders SET status = 'dropped'
           WHERE registration_id = $1 AND status = 'pending'
             AND NOT (offset_minutes = ANY($2::int[]))""",
        registration_id,
        [p.offset_minutes for p in planned],
    )
    await conn.executemany(
        """INSERT INTO reminders (registration_id, offset_minutes, event_id, event_revision,
               due_at, status)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (registration_id, offset_minutes) DO UPDATE SET
               event_revision = EXCLUDED.event_revision, due_at = EXCLUDED.due_at,
               status = EXCLUDED.status, email_id = NULL
           WHERE reminders.event_revision <> EXCLUDED.event_revision
              OR reminders.due_at <> EXCLUDED.due_at
              OR reminders.status = 'dropped'""",
        [
            (registration_id, p.offset_minutes, event_id, revision, p.due_at, p.status)
            for p in planned
        ],
    )


async def drop_reminders(
    conn: asyncpg.Connection,
    *,
    registration_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> int:
    result: str = await conn.execute(
        """UPDATE reminders SET status = 'dropped'
           WHERE status = 'pending' AND (registration_id = $1 OR event_id = $2)""",
        registration_id,
        event_id,
    )
    return int(result.split()[-1])


@dataclass(frozen=True)
class DueReminder:
    registration_id: uuid.UUID
    offset_minutes: int
    event_revision: int
    due_at: datetime
    event: EventRow
    registration: RegistrationRow


async def claim_due_reminders(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[DueReminder]:
    """Pending reminders due by ``now``, locked so a second scheduler skips them."""
    rows = await conn.fetch(
        f"""SELECT r.offset_minutes, r.event_revision, r.due_at,
                   {", ".join("e." + c.strip() for c in _EVENT_COLUMNS.split(","))},
                   {
            ", ".join(
                "g." + c.strip() + " AS g_" + c.strip() for c in _REGISTRATION_COLUMNS.split(",")
            )
        }
            FROM reminders r
            JOIN event_schedule e ON e.event_id = r.event_id
            JOIN registrations g ON g.registration_id = r.registration_id
            WHERE r.status = 'pending' AND r.due_at <= $1
            ORDER BY r.due_at LIMIT $2
            FOR UPDATE OF r SKIP LOCKED""",
        now,
        limit,
    )
    due = []
    for row in rows:
        data = dict(row)
        registration = RegistrationRow(
            **{k[2:]: data.pop(k) for k in list(data) if k.startswith("g_")}
        )
        minutes = data.pop("offset_minutes")
        revision = data.pop("event_revision")
        due_at = data.pop("due_at")
        event = EventRow(
            **{**data, "reminder_offsets_hours": tuple(data["reminder_offsets_hours"])}
        )
        due.append(
            DueReminder(
                registration.registration_id, minutes, revision, due_at, event, registration
            )
        )
    return due


async def settle_reminder(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    minutes: int,
    status: str,
    email_id: uuid.UUID | None,
) -> None:
    await conn.execute(
        "UPDATE reminders SET status = $3, email_id = $4"
        " WHERE registration_id = $1 AND offset_minutes = $2",
        registration_id,
        minutes,
        status,
        email_id,
    )


async def next_reminder_at(conn: asyncpg.Connection) -> datetime | None:
    at: datetime | None = await conn.fetchval(
        "SELECT min(due_at) FROM reminders WHERE status = 'pending'"
    )
    return at


async def reminders_of(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT offset_minutes, event_revision, due_at, status, email_id FROM reminders"
        " WHERE registration_id = $1 ORDER BY due_at",
        registration_id,
    )
    return [dict(r) for r in rows]


# --- attendance ------------------------------------------------------------------------------


async def record_attendance(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    event_id: uuid.UUID,
    attended: bool,
    minutes: float,
) -> None:
    await conn.execute(
        """INSERT INTO attendance (registration_id, event_id, attended, minutes_watched)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (registration_id) DO UPDATE SET attended = EXCLUDED.attended,
               minutes_watched = EXCLUDED.minutes_watched""",
        registration_id,
        event_id,
        attended,
        minutes,
    )


async def mark_finalised(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    first = await conn.fetchval(
        "INSERT INTO finalised_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
        event_id,
    )
    return bool(first)


async def attended_ids(conn: asyncpg.Connection, event_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT registration_id FROM attendance WHERE event_id = $1 AND attended", event_id
    )
    return {r["registration_id"] for r in rows}


# --- subscribers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscriber:
    id: uuid.UUID
    email: str
    name: str
    status: str


async def add_subscriber(
    conn: asyncpg.Connection,
    *,
    email: str,
    email_sha256: str,
    name: str,
    role: str | None,
    region_code: str | None,
    interests: list[str],
    source: str,
) -> Subscriber:
    """A new subscriber is 'pending'; an unsubscribed one becomes 'pending' again (a new
    opt-in); a pending or confirmed one keeps its status, with the new details."""
    row = await conn.fetchrow(
        """INSERT INTO subscribers (id, email, email_sha256, name, role, region_code, interests,
               status, source)
           VALUES ($1, lower($2), $3, $4, $5, $6, $7, 'pending', $8)
           ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name,
               role = coalesce(EXCLUDED.role, subscribers.role),
               region_code = coalesce(EXCLUDED.region_code, subscribers.region_code),
               interests = CASE WHEN cardinality(EXCLUDED.interests) > 0
                                THEN EXCLUDED.interests ELSE subscribers.interests END,
               status = CASE WHEN subscribers.status = 'unsubscribed' THEN 'pending'
                             ELSE subscribers.status END
           RETURNING id, email, name, status""",
        uuid.uuid4(),
        email,
        email_sha256,
        name,
        role,
        region_code,
        interests,
        source,
    )
    return Subscriber(**dict(row))


async def confirm_subscriber(
    conn: asyncpg.Connection, subscriber_id: uuid.UUID
) -> Subscriber | None:
    row = await conn.fetchrow(
        """UPDATE subscribers SET status = 'confirmed', confirmed_at = coalesce(confirmed_at, now())
           WHERE id = $1 AND status IN ('pending', 'confirmed')
           RETURNING id, email, name, status""",
        subscriber_id,
    )
    if row is not None:
        await conn.execute(
            "DELETE FROM suppressions WHERE email = $1 AND scope = 'newsletters'", row["email"]
        )
    return Subscriber(**dict(row)) if row else None


async def unsubscribe_address(conn: asyncpg.Connection, email: str) -> None:
    await conn.execute(
        """UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = now()
           WHERE email = lower($1) AND status <> 'unsubscribed'""",
        email,
    )


async def count_subscribers(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM subscribers GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


# --- mailings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailingRow:
    id: uuid.UUID
    subject: str
    body: str
    audience: dict[str, Any]
    include_events: bool
    status: str
    scheduled_at: datetime | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    frozen_html: str | None
    frozen_text: str | None


_MAILING_COLUMNS = (
    "id, subject, body, audience, include_events, status, scheduled_at, created_by, created_at,"
    " started_at, finished_at, frozen_html, frozen_text"
)


async def create_mailing(
    conn: asyncpg.Connection,
    *,
    subject: str,
    body: str,
    audience: Audience,
    include_events: bool,
    created_by: str,
) -> uuid.UUID:
    mailing_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO mailings (id, subject, body, audience, include_events, status, created_by)
           VALUES ($1, $2, $3, $4, $5, 'draft', $6)""",
        mailing_id,
        subject,
        body,
        audience.as_json(),
        include_events,
        created_by,
    )
    return mailing_id


async def update_mailing(
    conn: asyncpg.Connection,
    mailing_id: uuid.UUID,
    *,
    subject: str,
    body: str,
    audience: Audience,
    include_events: bool,
) -> None:
    await conn.execute(
        """UPDATE mailings SET subject = $2, body = $3, audience = $4, include_events = $5,
               updated_at = now() WHERE id = $1""",
        mailing_id,
        subject,
        body,
        audience.as_json(),
        include_events,
    )


async def get_mailing(
    conn: asyncpg.Connection, mailing_id: uuid.UUID, *, for_update: bool = False
) -> MailingRow | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_MAILING_COLUMNS} FROM mailings WHERE id = $1{lock}", mailing_id
    )
    return MailingRow(**dict(row)) if row else None


async def list_mailings(conn: asyncpg.Connection, limit: int = 100) -> list[MailingRow]:
    rows = await conn.fetch(
        f"SELECT {_MAILING_COLUMNS} FROM mailings ORDER BY created_at DESC LIMIT $1", limit
    )
    return [MailingRow(**dict(r)) for r in rows]


async def set_mailing_schedule(
    conn: asyncpg.Connection, mailing_id: uuid.UUID, status: str, at: datetime | None
) -> None:
    await conn.execute(
        "UPDATE mailings SET status = $2, scheduled_at = $3, updated_at = now() WHERE id = $1",
        mailing_id,
        status,
        at,
    )


async def claim_due_mailing(conn: asyncpg.Connection, now: datetime) -> MailingRow | None:
    row = await conn.fetchrow(
        f"""SELECT {_MAILING_COLUMNS} FROM mailings
            WHERE status = 'scheduled' AND scheduled_at <= $1
            ORDER BY scheduled_at LIMIT 1 FOR UPDATE SKIP LOCKED""",
        now,
    )
    return MailingRow(**dict(row)) if row else None


async def next_mailing_at(conn: asyncpg.Connection) -> datetime | None:
    at: datetime | None = await conn.fetchval(
        "SELECT min(scheduled_at) FROM mailings WHERE status = 'scheduled'"
    )
    return at


_SUPPRESSED = "EXISTS (SELECT 1 FROM suppressions x WHERE x.email = lower({col}))"


async def materialise_recipients(
    conn: asyncpg.Connection, mailing_id: uuid.UUID, audience: Audience
) -> int:
    """Write one row per recipient before anything is sent (suppressed ones as such)."""
    status = f"CASE WHEN {_SUPPRESSED.format(col='p.email')} THEN 'suppressed' ELSE 'queued' END"
    if audience.kind == "subscribers":
        source = """SELECT email, name FROM subscribers
                    WHERE status = 'confirmed'
                      AND (cardinality($2::text[]) = 0 OR region_code = ANY($2::text[]))
                      AND (cardinality($3::text[]) = 0 OR role = ANY($3::text[]))
                      AND (cardinality($4::text[]) = 0 OR interests && $4::text[])"""
        args: list[Any] = [list(audience.regions), list(audience.roles), list(audience.interests)]
    else:
        condition = {
            "registrants": "TRUE",
            "attendees": "a.attended IS TRUE",
            "no_shows": "a.attended IS NOT TRUE",
        }[audience.kind]
        source = f"""SELECT DISTINCT ON (lower(g.email)) lower(g.email) AS email, g.name
                     FROM registrations g
                     LEFT JOIN attendance a ON a.registration_id = g.registration_id
                     WHERE g.event_id = $2 AND g.status = 'confirmed' AND {condition}"""
        args = [audience.event_id]
    result: str = await conn.execute(
        f"""INSERT INTO mailing_recipients (id, mailing_id, email, name, status)
            SELECT gen_random_uuid(), $1, p.email, p.name, {status}
            FROM ({source}) AS p
            ON CONFLICT (mailing_id, email) DO NOTHING""",
        mailing_id,
        *args,
    )
    return int(result.split()[-1])


async def start_mailing(
    conn: asyncpg.Connection, mailing_id: uuid.UUID, html: str, text: str, now: datetime
) -> None:
    await conn.execute(
        """UPDATE mailings SET status = 'sending', frozen_html = $2, frozen_text = $3,
               started_at = $4, updated_at = now() WHERE id = $1""",
        mailing_id,
        html,
        text,
        now,
    )


async def mailing_progress(conn: asyncpg.Connection, mailing_id: uuid.UUID) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM mailing_recipients WHERE mailing_id = $1"
        " GROUP BY status",
        mailing_id,
    )
    counts = dict.fromkeys(("queued", "sending", "sent", "failed", "suppressed"), 0)
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def finished_mailings(conn: asyncpg.Connection) -> list[MailingRow]:
    """Sending mailings with nobody left to send to, locked for the caller to close."""
    rows = await conn.fetch(
        f"""SELECT {_MAILING_COLUMNS} FROM mailings m
            WHERE status = 'sending' AND NOT EXISTS (
                SELECT 1 FROM mailing_recipients r
                WHERE r.mailing_id = m.id AND r.status IN ('queued', 'sending'))
            FOR UPDATE SKIP LOCKED"""
    )
    return [MailingRow(**dict(r)) for r in rows]


async def close_mailing(conn: asyncpg.Connection, mailing_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE mailings SET status = 'sent', finished_at = $2, updated_at = now() WHERE id = $1",
        mailing_id,
        now,
    )


@dataclass(frozen=True)
class ClaimedRecipient:
    id: uuid.UUID
    mailing_id: uuid.UUID
    email: str
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
                    status = CASE WHEN {_SUPPRESSED.format(col="r.email")}
                                  THEN 'suppressed' ELSE 'sending' END,
                    attempts = r.attempts + 1, claimed_by = $3
                FROM picked WHERE r.id = picked.id
                RETURNING r.id, r.mailing_id, r.email, r.name, r.attempts, r.status)
            SELECT id, mailing_id, email, name, attempts FROM claimed WHERE status = 'sending'""",
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


async def recipient_email(conn: asyncpg.Connection, recipient_id: uuid.UUID) -> str | None:
    email: str | None = await conn.fetchval(
        "SELECT email FROM mailing_recipients WHERE id = $1", recipient_id
    )
    return email


# --- erasure ---------------------------------------------------------------------------------


async def erase_person(
    conn: asyncpg.Connection, email_sha256: str, registration_ids: list[uuid.UUID]
) -> dict[str, int]:
    """Everything held about one person goes: subscriber, registrations, their reminders,
    queued emails and mailing rows; sent emails keep only what counting needs."""

    def count(result: str) -> int:
        return int(result.split()[-1])

    hashed = "encode(sha256(convert_to(lower(trim({col})), 'UTF8')), 'hex') = $1"
    out = {
        "queued_emails": count(
            await conn.execute(
                f"""DELETE FROM emails WHERE status IN ('queued', 'sending', 'suppressed')
                    AND ({hashed.format(col="recipient")} OR registration_id = ANY($2::uuid[]))""",
                email_sha256,
                registration_ids,
            )
        ),
        "sent_emails_redacted": count(
            await conn.execute(
                f"""UPDATE emails SET recipient = 'gewist', subject = '', body_text = '',
                        body_html = '', ics = NULL, last_error = NULL
                    WHERE {hashed.format(col="recipient")} OR registration_id = ANY($2::uuid[])""",
                email_sha256,
                registration_ids,
            )
        ),
        "mailing_rows": count(
            await conn.execute(
                f"DELETE FROM mailing_recipients WHERE {hashed.format(col='email')}",
                email_sha256,
            )
        ),
        "subscribers": count(
            await conn.execute("DELETE FROM subscribers WHERE email_sha256 = $1", email_sha256)
        ),
        "registrations": count(
            await conn.execute(
                f"""DELETE FROM registrations WHERE registration_id = ANY($2::uuid[])
                    OR {hashed.format(col="email")}""",
                email_sha256,
                registration_ids,
            )
        ),
    }
    await conn.execute(
        "DELETE FROM attendance WHERE registration_id = ANY($1::uuid[])", registration_ids
    )
    # An unsubscribe goes with the person; a hard bounce stays (the address still bounces).
    await conn.execute(
        f"DELETE FROM suppressions WHERE scope = 'newsletters' AND {hashed.format(col='email')}",
        email_sha256,
    )
    return out
