"""SQL of newsletter subscribers and mailings: drafts, schedules, recipients, progress."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sto_notifications.domain import Audience
from sto_notifications.repository.sending import SUPPRESSED_SQL


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
    person_key: str,
    name: str,
    role: str | None,
    region_code: str | None,
    interests: list[str],
    source: str,
    privacy_version: str = "",
) -> Subscriber:
    """A new subscriber is 'pending'; an unsubscribed one becomes 'pending' again (a new
    opt-in); a pending or confirmed one keeps its status, with the new details."""
    row = await conn.fetchrow(
        """INSERT INTO subscribers (id, email, email_sha256, name, role, region_code, interests,
               status, source, person_key, privacy_version, consented_at)
           VALUES ($1, lower($2), $3, $4, $5, $6, $7, 'pending', $8, $9, nullif($10, ''),
                   now())
           ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name,
               person_key = EXCLUDED.person_key,
               privacy_version = EXCLUDED.privacy_version, consented_at = now(),
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
        person_key,
        privacy_version,
    )
    return Subscriber(**dict(row))


async def confirm_subscriber(
    conn: asyncpg.Connection, subscriber_id: uuid.UUID
) -> Subscriber | None:
    row = await conn.fetchrow(
        """UPDATE subscribers SET status = 'confirmed', confirmed_at = coalesce(confirmed_at, now())
           WHERE id = $1 AND status IN ('pending', 'confirmed')
           RETURNING id, email, name, status, person_key""",
        subscriber_id,
    )
    if row is None:
        return None
    await conn.execute(
        "DELETE FROM suppressed WHERE person_key = $1 AND scope = 'newsletters'",
        row["person_key"],
    )
    return Subscriber(row["id"], row["email"], row["name"], row["status"])


async def unsubscribe_person(conn: asyncpg.Connection, person_key: str) -> None:
    await conn.execute(
        """UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = now()
           WHERE person_key = $1 AND status <> 'unsubscribed'""",
        person_key,
    )


async def count_subscribers(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM subscribers GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


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


@dataclass(frozen=True)
class MailingScope:
    """The mailings a regional programme leader may see: those to people of ``events``, and
    those to subscribers of some of ``regions`` and no other region (as ``Organiser.covers``
    and ``Organiser.covers_regions`` decide one at a time)."""

    events: frozenset[uuid.UUID]
    regions: frozenset[str]


async def list_mailings(
    conn: asyncpg.Connection, limit: int = 100, scope: MailingScope | None = None
) -> list[MailingRow]:
    """Newest first; with ``scope``, only the mailings inside it."""
    if scope is None:
        rows = await conn.fetch(
            f"SELECT {_MAILING_COLUMNS} FROM mailings ORDER BY created_at DESC LIMIT $1", limit
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_MAILING_COLUMNS} FROM mailings
                WHERE CASE WHEN audience->>'kind' = 'subscribers'
                      THEN jsonb_array_length(coalesce(audience->'regions', '[]')) > 0
                           AND audience->'regions' <@ to_jsonb($2::text[])
                           AND audience->>'event_id' IS NULL
                      ELSE (audience->>'event_id')::uuid = ANY($3::uuid[]) END
                ORDER BY created_at DESC LIMIT $1""",
            limit,
            sorted(scope.regions),
            list(scope.events),
        )
    return [MailingRow(**dict(r)) for r in rows]


@dataclass(frozen=True)
class EventChoice:
    """An event a mailing may be about, as the form lists it."""

    event_id: uuid.UUID
    title: str
    starts_at: datetime
    status: str


async def event_choices(
    conn: asyncpg.Connection, only: frozenset[uuid.UUID] | None, limit: int = 300
) -> list[EventChoice]:
    """The events known here (``event_schedule``), newest start first; ``only`` those."""
    rows = await conn.fetch(
        """SELECT event_id, title, starts_at, status FROM event_schedule
           WHERE $1::uuid[] IS NULL OR event_id = ANY($1::uuid[])
           ORDER BY starts_at DESC LIMIT $2""",
        None if only is None else list(only),
        limit,
    )
    return [EventChoice(**dict(r)) for r in rows]


async def set_mailing_schedule(
    conn: asyncpg.Connection, mailing_id: uuid.UUID, status: str, at: datetime | None
) -> None:
    await conn.execute(
        "UPDATE mailings SET status = $2, scheduled_at = $3, updated_at = now() WHERE id = $1",
        mailing_id,
        status,
        at,
    )


async def next_due_mailing(
    conn: asyncpg.Connection, now: datetime, passed: Sequence[uuid.UUID] = ()
) -> MailingRow | None:
    """The scheduled mailing due first (not locked: it is rendered before it is claimed),
    leaving out the ones ``passed`` over this round."""
    row = await conn.fetchrow(
        f"""SELECT {_MAILING_COLUMNS} FROM mailings
            WHERE status = 'scheduled' AND scheduled_at <= $1 AND NOT id = ANY($2::uuid[])
            ORDER BY scheduled_at LIMIT 1""",
        now,
        list(passed),
    )
    return MailingRow(**dict(row)) if row else None


async def claim_scheduled_mailing(
    conn: asyncpg.Connection, mailing_id: uuid.UUID
) -> MailingRow | None:
    """The mailing locked for starting, if it is still scheduled and no one else holds it."""
    row = await conn.fetchrow(
        f"""SELECT {_MAILING_COLUMNS} FROM mailings
            WHERE id = $1 AND status = 'scheduled' FOR UPDATE SKIP LOCKED""",
        mailing_id,
    )
    return MailingRow(**dict(row)) if row else None


async def next_mailing_at(conn: asyncpg.Connection) -> datetime | None:
    at: datetime | None = await conn.fetchval(
        "SELECT min(scheduled_at) FROM mailings WHERE status = 'scheduled'"
    )
    return at


async def materialise_recipients(
    conn: asyncpg.Connection, mailing_id: uuid.UUID, audience: Audience
) -> int:
    """Write one row per recipient before anything is sent (suppressed ones as such)."""
    suppressed = SUPPRESSED_SQL.format(col="p.person_key")
    status = f"CASE WHEN {suppressed} THEN 'suppressed' ELSE 'queued' END"
    if audience.kind == "subscribers":
        source = """SELECT email, name, person_key FROM subscribers
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
        source = f"""SELECT DISTINCT ON (lower(g.email)) lower(g.email) AS email, g.name,
                            g.person_key
                     FROM registrations g
                     LEFT JOIN attendance a ON a.registration_id = g.registration_id
                     WHERE g.event_id = $2 AND g.status = 'confirmed' AND {condition}"""
        args = [audience.event_id]
    result: str = await conn.execute(
        f"""INSERT INTO mailing_recipients (id, mailing_id, email, name, status, person_key)
            SELECT gen_random_uuid(), $1, p.email, p.name, {status}, p.person_key
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
