"""SQL of this service's copies of events and registrations (from the topics), their
attendance, and the erasure of a person from every table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


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
    description: str = ""


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


EVENT_COLUMNS = (
    "event_id, revision, status, title, starts_at, ends_at, venue, replay_url,"
    " reminder_offsets_hours, description"
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
            f"""INSERT INTO event_schedule ({EVENT_COLUMNS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (event_id) DO UPDATE SET revision = EXCLUDED.revision,
                    title = EXCLUDED.title, starts_at = EXCLUDED.starts_at,
                    ends_at = EXCLUDED.ends_at, updated_at = now()
                WHERE event_schedule.revision < EXCLUDED.revision
                RETURNING true""",
            *_event_args(event),
        )
        return bool(applied)
    applied = await conn.fetchval(
        f"""INSERT INTO event_schedule ({EVENT_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (event_id) DO UPDATE SET revision = EXCLUDED.revision,
                status = EXCLUDED.status, title = EXCLUDED.title,
                starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
                venue = EXCLUDED.venue, replay_url = EXCLUDED.replay_url,
                reminder_offsets_hours = EXCLUDED.reminder_offsets_hours,
                description = EXCLUDED.description, updated_at = now()
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
        event.description,
    )


async def get_event(
    conn: asyncpg.Connection, event_id: uuid.UUID, *, lock: bool = False
) -> EventRow | None:
    """The stored event; ``lock``: held until the transaction ends, so the handlers that
    decide on one event's follow-ups (finalisation, a replay) take their turns."""
    row = await conn.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM event_schedule WHERE event_id = $1"
        + (" FOR UPDATE" if lock else ""),
        event_id,
    )
    return _event(row) if row else None


async def event_of_registration(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> uuid.UUID | None:
    """The event a registration is for, from its copy here or from an e-mail about it."""
    event_id: uuid.UUID | None = await conn.fetchval(
        """SELECT event_id FROM registrations WHERE registration_id = $1
           UNION ALL
           (SELECT event_id FROM emails WHERE registration_id = $1 AND event_id IS NOT NULL
            LIMIT 1)
           LIMIT 1""",
        registration_id,
    )
    return event_id


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
    person_key: str,
) -> None:
    await conn.execute(
        """INSERT INTO registrations (registration_id, event_id, status, name, email, role,
               region_code, viewer_id, manage_url, person_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (registration_id) DO UPDATE SET status = EXCLUDED.status,
               name = EXCLUDED.name, email = EXCLUDED.email, role = EXCLUDED.role,
               region_code = EXCLUDED.region_code, viewer_id = EXCLUDED.viewer_id,
               manage_url = EXCLUDED.manage_url, person_key = EXCLUDED.person_key,
               updated_at = now()""",
        registration_id,
        event_id,
        status,
        name,
        email,
        role,
        region_code,
        viewer_id,
        manage_url,
        person_key,
    )


REGISTRATION_COLUMNS = (
    "registration_id, event_id, status, name, email, viewer_id, manage_url, ics_sequence"
)


async def get_registration(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> RegistrationRow | None:
    row = await conn.fetchrow(
        f"SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE registration_id = $1",
        registration_id,
    )
    return RegistrationRow(**dict(row)) if row else None


async def registrations_of(
    conn: asyncpg.Connection, event_id: uuid.UUID, statuses: tuple[str, ...]
) -> list[RegistrationRow]:
    rows = await conn.fetch(
        f"""SELECT {REGISTRATION_COLUMNS} FROM registrations
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


@dataclass(frozen=True)
class Attendance:
    """What analytics said of one registrant: attended (live or by replay), and whether their
    certificate was issued."""

    attended: bool
    attended_as: str | None
    certificate: bool


async def record_attendance(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    event_id: uuid.UUID,
    attendance: Attendance,
    minutes: float,
) -> None:
    await conn.execute(
        """INSERT INTO attendance (registration_id, event_id, attended, minutes_watched,
               attended_as, certificate)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (registration_id) DO UPDATE SET attended = EXCLUDED.attended,
               minutes_watched = EXCLUDED.minutes_watched,
               attended_as = EXCLUDED.attended_as, certificate = EXCLUDED.certificate""",
        registration_id,
        event_id,
        attendance.attended,
        minutes,
        attendance.attended_as,
        attendance.certificate,
    )


async def mark_finalised(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    first = await conn.fetchval(
        "INSERT INTO finalised_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
        event_id,
    )
    return bool(first)


async def is_finalised(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT true FROM finalised_events WHERE event_id = $1", event_id)
    )


async def attendance_of(
    conn: asyncpg.Connection, event_id: uuid.UUID
) -> dict[uuid.UUID, Attendance]:
    """The attendance recorded for the event's registrants (nobody recorded: not attended)."""
    rows = await conn.fetch(
        "SELECT registration_id, attended, attended_as, certificate FROM attendance"
        " WHERE event_id = $1",
        event_id,
    )
    return {
        r["registration_id"]: Attendance(r["attended"], r["attended_as"], r["certificate"])
        for r in rows
    }


async def erase_person(
    conn: asyncpg.Connection,
    registration_ids: list[uuid.UUID],
    person_key: str | None,
    legacy_sha256: str = "",
) -> dict[str, int]:
    """Everything held about one person goes: subscriber, registrations, their reminders,
    queued emails and mailing rows; sent emails keep only what counting needs; an unsubscribe
    goes with them, a hard bounce stays (as a keyed hash: the address still bounces).

    The person is named by ``person_key`` (or, in an erasure from before keyed hashes, by the
    plain SHA-256 of the address, ``legacy_sha256``) and by their registrations' ids."""

    def count(result: str) -> int:
        return int(result.split()[-1])

    def named(key_column: str, email_column: str) -> str:
        """The person's rows: by key ($1), or by the legacy hash of the address ($2)."""
        sha = f"encode(sha256(convert_to(lower(trim({email_column})), 'UTF8')), 'hex')"
        return f"({key_column} = $1 OR ($2 <> '' AND {sha} = $2))"

    person = (person_key, legacy_sha256)
    by_recipient = named("recipient_key", "recipient")
    by_email = named("person_key", "email")
    out = {
        "queued_emails": count(
            await conn.execute(
                f"""DELETE FROM emails WHERE status IN ('queued', 'sending', 'suppressed')
                    AND ({by_recipient} OR registration_id = ANY($3::uuid[]))""",
                *person,
                registration_ids,
            )
        ),
        "sent_emails_redacted": count(
            await conn.execute(
                f"""UPDATE emails SET recipient = 'gewist', recipient_key = NULL, subject = '',
                        body_text = '', body_html = '', ics = NULL, last_error = NULL
                    WHERE {by_recipient} OR registration_id = ANY($3::uuid[])""",
                *person,
                registration_ids,
            )
        ),
        "mailing_rows": count(
            await conn.execute(f"DELETE FROM mailing_recipients WHERE {by_email}", *person)
        ),
        "subscribers": count(
            await conn.execute(
                "DELETE FROM subscribers WHERE person_key = $1 OR ($2 <> '' AND email_sha256 = $2)",
                *person,
            )
        ),
        "registrations": count(
            await conn.execute(
                f"""DELETE FROM registrations WHERE registration_id = ANY($3::uuid[])
                    OR {by_email}""",
                *person,
                registration_ids,
            )
        ),
    }
    await conn.execute(
        "DELETE FROM attendance WHERE registration_id = ANY($1::uuid[])", registration_ids
    )
    if person_key:
        await conn.execute(
            "DELETE FROM suppressed WHERE scope = 'newsletters' AND person_key = $1", person_key
        )
    return out
