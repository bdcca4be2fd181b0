"""SQL for registrations: their lifecycle (cancel, promote, check in), lists, bookings of
colleagues, repeat notices and the privacy requests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from sto_registrations.domain import Registration
from sto_registrations.repository.rows import REGISTRATION_COLUMNS, registration_of
from stolive_shared.privacy import keyring


async def get_registration(
    conn: asyncpg.Connection, registration_id: uuid.UUID, *, for_update: bool = False
) -> Registration | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE id = $1{lock}", registration_id
    )
    return registration_of(row) if row else None


async def add_registration(conn: asyncpg.Connection, registration: Registration) -> Registration:
    """One registration, its seat or waiting-list place counted on the event's row."""
    applicant = registration.applicant
    row = await conn.fetchrow(
        f"""WITH added AS (
                INSERT INTO registrations (id, event_id, status, name, email, organisation,
                    role, region_code, profiles, newsletter, viewer_id, created_at,
                    checked_in_at, group_id, confirmed_at, school_code)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                        CASE WHEN $3 = 'confirmed' THEN now() END, $15)
                RETURNING {REGISTRATION_COLUMNS}),
            counted AS (
                UPDATE events SET confirmed_count = confirmed_count + ($3 = 'confirmed')::int,
                                  waitlisted_count = waitlisted_count + ($3 = 'waitlisted')::int
                WHERE id = $2)
            SELECT * FROM added""",
        registration.id,
        registration.event_id,
        registration.status,
        applicant.name,
        applicant.email,
        applicant.organisation,
        applicant.role,
        applicant.region_code,
        list(applicant.profiles),
        applicant.newsletter,
        registration.viewer_id,
        registration.created_at,
        registration.checked_in_at,
        registration.group_id,
        applicant.school_code,
    )
    assert row is not None
    return registration_of(row)


async def data_keys(
    conn: asyncpg.Connection, registrations: Sequence[Registration]
) -> dict[uuid.UUID, bytes]:
    """The data keys that seal these registrations' contacts in messages; one is made now for
    any that has none and is not erased (a registration from before sealing)."""
    return await keyring.ensure_keys(conn, [r.id for r in registrations if not r.erased])


async def mark_cancelled(conn: asyncpg.Connection, registration: Registration, reason: str) -> None:
    """Cancel, and give back the seat or the waiting-list place it held, in one statement."""
    await conn.execute(
        """WITH cancelled AS (
               UPDATE registrations SET status = 'cancelled', cancelled_at = now(),
                                        cancel_reason = $2
               WHERE id = $1 AND status = $3 RETURNING event_id)
           UPDATE events e
           SET confirmed_count = e.confirmed_count - ($3 = 'confirmed')::int,
               waitlisted_count = e.waitlisted_count - ($3 = 'waitlisted')::int
           FROM cancelled WHERE e.id = cancelled.event_id""",
        registration.id,
        reason,
        registration.status,
    )


async def cancel_all_active(
    conn: asyncpg.Connection, event_id: uuid.UUID, reason: str
) -> list[Registration]:
    """Cancel every active registration of an event (it was cancelled); as they were before."""
    rows = await conn.fetch(
        f"""WITH before AS (
                SELECT {REGISTRATION_COLUMNS} FROM registrations
                WHERE event_id = $1 AND status <> 'cancelled' ORDER BY queue_number FOR UPDATE),
            cancelled AS (
                UPDATE registrations r SET status = 'cancelled', cancelled_at = now(),
                                           cancel_reason = $2
                FROM before WHERE r.id = before.id RETURNING r.id)
            SELECT before.* FROM before JOIN cancelled USING (id) ORDER BY queue_number""",
        event_id,
        reason,
    )
    await conn.execute(
        "UPDATE events SET confirmed_count = 0, waitlisted_count = 0 WHERE id = $1", event_id
    )
    return [registration_of(r) for r in rows]


async def waitlist_position(conn: asyncpg.Connection, registration: Registration) -> int:
    position: int = await conn.fetchval(
        "SELECT count(*) FROM registrations WHERE event_id = $1 AND status = 'waitlisted'"
        " AND queue_number <= $2",
        registration.event_id,
        registration.queue_number,
    )
    return position


async def mark_checked_in(
    conn: asyncpg.Connection, registration_id: uuid.UUID, organiser: str
) -> Registration | None:
    """Check in once; None when already checked in."""
    row = await conn.fetchrow(
        f"""UPDATE registrations SET checked_in_at = now(), checked_in_by = $2
            WHERE id = $1 AND checked_in_at IS NULL
            RETURNING {REGISTRATION_COLUMNS}""",
        registration_id,
        organiser,
    )
    return registration_of(row) if row else None


async def undo_check_in(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> Registration | None:
    """Checked in no more; None when it was not checked in."""
    row = await conn.fetchrow(
        f"""UPDATE registrations SET checked_in_at = NULL, checked_in_by = NULL
            WHERE id = $1 AND checked_in_at IS NOT NULL
            RETURNING {REGISTRATION_COLUMNS}""",
        registration_id,
    )
    return registration_of(row) if row else None


async def active_registration(
    conn: asyncpg.Connection, event_id: uuid.UUID, email: str
) -> Registration | None:
    """The registration (not cancelled) this normalised address holds for the event."""
    row = await conn.fetchrow(
        f"""SELECT {REGISTRATION_COLUMNS} FROM registrations
            WHERE event_id = $1 AND lower(email) = $2 AND status <> 'cancelled'""",
        event_id,
        email,
    )
    return registration_of(row) if row else None


async def promote_one(conn: asyncpg.Connection, registration_id: uuid.UUID) -> Registration | None:
    """This one registration from the waiting list into a seat, the counts moved with it;
    None when it was not waiting (the caller decided on the event's locked row)."""
    row = await conn.fetchrow(
        f"""WITH promoted AS (
                UPDATE registrations SET status = 'confirmed', confirmed_at = now()
                WHERE id = $1 AND status = 'waitlisted'
                RETURNING {REGISTRATION_COLUMNS}),
            counted AS (
                UPDATE events e SET confirmed_count = e.confirmed_count + 1,
                                    waitlisted_count = e.waitlisted_count - 1
                FROM promoted WHERE e.id = promoted.event_id)
            SELECT * FROM promoted""",
        registration_id,
    )
    return registration_of(row) if row else None


async def correct(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    name: str,
    organisation: str,
    role: str,
) -> Registration | None:
    """New name, school and role (not erased ones); None when there is nothing to correct.
    A school typed anew is no longer the site chosen from the list: its code goes."""
    row = await conn.fetchrow(
        f"""UPDATE registrations SET name = $2, organisation = $3, role = $4,
                school_code = CASE WHEN organisation IS DISTINCT FROM $3 THEN NULL
                                   ELSE school_code END
            WHERE id = $1 AND erased_at IS NULL AND anonymised_at IS NULL
            RETURNING {REGISTRATION_COLUMNS}""",
        registration_id,
        name,
        organisation,
        role,
    )
    return registration_of(row) if row else None


async def status_counts(conn: asyncpg.Connection, event_id: uuid.UUID) -> dict[str, int]:
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
                  count(*) FILTER (WHERE status = 'waitlisted') AS waitlisted,
                  count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                  count(*) FILTER (WHERE checked_in_at IS NOT NULL) AS checked_in
           FROM registrations WHERE event_id = $1""",
        event_id,
    )
    return dict(row)


async def attendees(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    *,
    status: str | None = None,
    region_code: str | None = None,
    role: str | None = None,
) -> list[Registration]:
    """An event's registrations in sign-up order, optionally filtered."""
    rows = await conn.fetch(
        f"""SELECT {REGISTRATION_COLUMNS} FROM registrations
            WHERE event_id = $1 AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR region_code = $3) AND ($4::text IS NULL OR role = $4)
            ORDER BY queue_number""",
        event_id,
        status,
        region_code,
        role,
    )
    return [registration_of(r) for r in rows]


async def person_records(conn: asyncpg.Connection, email: str) -> list[dict[str, Any]]:
    """Every registration held for this (normalised) email, each with its event's title."""
    rows = await conn.fetch(
        """SELECT r.id, r.event_id, e.title AS event_title, e.starts_at AS event_starts_at,
                  r.status, r.name, r.email, r.organisation, r.school_code, r.role,
                  r.region_code, r.profiles, r.newsletter, r.viewer_id, r.group_id,
                  r.created_at, r.confirmed_at, r.cancelled_at, r.cancel_reason,
                  r.checked_in_at, r.privacy_version, r.consented_at
           FROM registrations r JOIN events e ON e.id = r.event_id
           WHERE lower(r.email) = $1 ORDER BY r.created_at""",
        email,
    )
    return [dict(r) for r in rows]


async def erase_person(conn: asyncpg.Connection, email: str) -> list[uuid.UUID]:
    """Remove the personal fields of every registration of this email (and forget their
    keys); keep status and counts."""
    ids: list[uuid.UUID] = [
        r["id"]
        for r in await conn.fetch(
            """UPDATE registrations SET name = NULL, email = NULL, organisation = NULL,
                   newsletter = false, erased_at = now()
               WHERE lower(email) = $1 RETURNING id""",
            email,
        )
    ]
    await _forget(conn, ids)
    return ids


async def anonymise_ended_before(
    conn: asyncpg.Connection, ended_before: datetime, limit: int
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Remove the personal fields of at most ``limit`` registrations of events that ended
    before ``ended_before`` (and forget their keys); their ids by event. Status, role,
    region, profiles and check-in stay: the counts and reports are made of those."""
    rows = await conn.fetch(
        """WITH expired AS (
               SELECT r.id FROM registrations r JOIN events e ON e.id = r.event_id
               WHERE e.ends_at < $1 AND r.anonymised_at IS NULL AND r.erased_at IS NULL
               ORDER BY r.event_id LIMIT $2 FOR UPDATE OF r SKIP LOCKED)
           UPDATE registrations r SET name = NULL, email = NULL, organisation = NULL,
                  newsletter = false, cancel_reason = NULL, anonymised_at = now()
           FROM expired WHERE r.id = expired.id RETURNING r.id, r.event_id""",
        ended_before,
        limit,
    )
    by_event: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in rows:
        by_event.setdefault(row["event_id"], []).append(row["id"])
    await _forget(conn, [row["id"] for row in rows])
    return by_event


async def _forget(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
    """Forget the registrations' data keys, and delete the published outbox rows about them:
    those are kept only to republish after a broker loss, and a person's details must not
    come back that way."""
    if not ids:
        return
    await keyring.forget(conn, ids)
    await conn.execute(
        """DELETE FROM outbox WHERE published_at IS NOT NULL
           AND encode(payload, 'escape') LIKE ANY($1::text[])""",
        [f'%"registration_id":"{i}"%' for i in ids],
    )


async def booked_colleagues(conn: asyncpg.Connection, booker_id: uuid.UUID) -> list[Registration]:
    """The colleagues ``booker_id`` signed up, in every form they sent, in sign-up order."""
    rows = await conn.fetch(
        f"""SELECT {REGISTRATION_COLUMNS} FROM registrations
            WHERE group_id IN (SELECT group_id FROM bookings WHERE booker_id = $1) AND id <> $1
            ORDER BY queue_number""",
        booker_id,
    )
    return [registration_of(r) for r in rows]


async def record_booking(
    conn: asyncpg.Connection, group_id: uuid.UUID, booker_id: uuid.UUID
) -> None:
    await conn.execute(
        "INSERT INTO bookings (group_id, booker_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        group_id,
        booker_id,
    )


async def claim_repeat_notices(
    conn: asyncpg.Connection, registration_ids: list[uuid.UUID], last_before: datetime
) -> list[Registration]:
    """The active registrations among ``registration_ids`` not told again since
    ``last_before``, marked as told now."""
    rows = await conn.fetch(
        f"""UPDATE registrations SET repeat_notice_at = now()
            WHERE id = ANY($1::uuid[]) AND status <> 'cancelled' AND erased_at IS NULL
              AND (repeat_notice_at IS NULL OR repeat_notice_at < $2)
            RETURNING {REGISTRATION_COLUMNS}""",
        registration_ids,
        last_before,
    )
    return [registration_of(r) for r in rows]


async def promote_first_waitlisted(
    conn: asyncpg.Connection, event_id: uuid.UUID, count: int
) -> list[Registration]:
    """The first ``count`` on the waiting list, in order, into seats (the caller decided how
    many, on the event's locked row: ``domain.promotions``); the counts move with them."""
    rows = await conn.fetch(
        f"""WITH chosen AS (
                SELECT id AS chosen_id FROM registrations
                WHERE event_id = $1 AND status = 'waitlisted'
                ORDER BY queue_number LIMIT $2 FOR UPDATE),
            promoted AS (
                UPDATE registrations SET status = 'confirmed', confirmed_at = now()
                FROM chosen WHERE id = chosen_id
                RETURNING {REGISTRATION_COLUMNS}),
            moved AS (SELECT count(*) AS n FROM promoted),
            counted AS (
                UPDATE events SET confirmed_count = confirmed_count + moved.n,
                                  waitlisted_count = waitlisted_count - moved.n
                FROM moved WHERE id = $1)
            SELECT * FROM promoted ORDER BY queue_number""",
        event_id,
        count,
    )
    return [registration_of(r) for r in rows]
