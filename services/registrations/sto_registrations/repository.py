"""SQL for the registrations service. Returns domain objects; opens no transactions.

Seats are counted on the event's row. A single seat is taken with one conditional UPDATE
(``confirmed_count < capacity``) that PostgreSQL serialises on that row; a batch of sign-ups
adds its seats with one UPDATE that locks its events' rows in id order (so two batches cannot
deadlock) and passes only if each row is still as the batch decided on it and the capacity
holds. Either way concurrent sign-ups can never overbook. ``waitlisted_count`` moves in the
same statements that move people on or off the waiting list.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from sto_registrations.domain import Applicant, EventTerms, SeatChange, SeatState
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import RegistrationStatus


@dataclass(frozen=True)
class Registration:
    id: uuid.UUID
    event_id: uuid.UUID
    status: RegistrationStatus
    applicant: Applicant
    viewer_id: str
    queue_number: int
    created_at: datetime
    checked_in_at: datetime | None = None
    group_id: uuid.UUID | None = None
    erased: bool = False


class SeatCountsChanged(Exception):
    """A batch's rows were not as it decided (seats taken, a person signed up meanwhile):
    nothing of it was stored; decide again."""


_REGISTRATION_COLUMNS = """id, event_id, status, name, email, organisation, role, region_code,
profiles, newsletter, viewer_id, queue_number, created_at, checked_in_at, group_id,
erased_at IS NOT NULL AS erased"""


def _registration(row: asyncpg.Record) -> Registration:
    return Registration(
        id=row["id"],
        event_id=row["event_id"],
        status=row["status"],
        applicant=Applicant(
            name=row["name"] or "",
            email=row["email"] or "",
            organisation=row["organisation"] or "",
            role=row["role"],
            region_code=row["region_code"],
            profiles=tuple(row["profiles"]),
            newsletter=row["newsletter"],
        ),
        viewer_id=row["viewer_id"],
        queue_number=row["queue_number"],
        created_at=row["created_at"],
        checked_in_at=row["checked_in_at"],
        group_id=row["group_id"],
        erased=row["erased"],
    )


def _terms(row: asyncpg.Record) -> EventTerms:
    return EventTerms(
        id=row["id"],
        revision=row["revision"],
        kind=row["kind"],
        status=row["status"],
        title=row["title"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        capacity=row["capacity"],
        waitlist_enabled=row["waitlist_enabled"],
        registration_opens_at=row["registration_opens_at"],
        registration_closes_at=row["registration_closes_at"],
    )


async def store_event(conn: asyncpg.Connection, event: EventSnapshot) -> EventTerms | None:
    """Keep the snapshot if it is newer than what we hold; return the previous terms if so."""
    previous = await get_terms(conn, event.event_id, for_update=True)
    if previous is not None and previous.revision >= event.revision:
        return None
    await conn.execute(
        """INSERT INTO events (id, revision, kind, status, title, starts_at, ends_at, venue,
               region_codes, capacity, waitlist_enabled, registration_opens_at,
               registration_closes_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
           ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, kind = EXCLUDED.kind,
               status = EXCLUDED.status, title = EXCLUDED.title,
               starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
               venue = EXCLUDED.venue, region_codes = EXCLUDED.region_codes,
               capacity = EXCLUDED.capacity, waitlist_enabled = EXCLUDED.waitlist_enabled,
               registration_opens_at = EXCLUDED.registration_opens_at,
               registration_closes_at = EXCLUDED.registration_closes_at""",
        event.event_id,
        event.revision,
        event.kind,
        event.status,
        event.title,
        event.starts_at,
        event.ends_at,
        event.venue,
        list(event.region_codes),
        event.capacity,
        event.waitlist_enabled,
        event.registration_opens_at,
        event.registration_closes_at,
    )
    return previous or _terms_from_snapshot(event)


def _terms_from_snapshot(event: EventSnapshot) -> EventTerms:
    return EventTerms(
        id=event.event_id,
        revision=event.revision,
        kind=event.kind,
        status=event.status,
        title=event.title,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        capacity=event.capacity,
        waitlist_enabled=event.waitlist_enabled,
        registration_opens_at=event.registration_opens_at,
        registration_closes_at=event.registration_closes_at,
    )


async def get_terms(
    conn: asyncpg.Connection, event_id: uuid.UUID, *, for_update: bool = False
) -> EventTerms | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM events WHERE id = $1{lock}", event_id)
    return _terms(row) if row else None


async def open_events(conn: asyncpg.Connection, now: datetime) -> list[EventTerms]:
    rows = await conn.fetch(
        "SELECT * FROM events WHERE status IN ('published', 'live') AND ends_at > $1"
        " ORDER BY starts_at LIMIT 100",
        now,
    )
    return [_terms(r) for r in rows]


async def take_seat(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    taken = await conn.fetchval(
        """UPDATE events SET confirmed_count = confirmed_count + 1
           WHERE id = $1 AND (capacity IS NULL OR confirmed_count < capacity)
           RETURNING true""",
        event_id,
    )
    return bool(taken)


async def read_seats(
    conn: asyncpg.Connection, wanted: Sequence[tuple[uuid.UUID, str]], *, lock: bool
) -> tuple[dict[uuid.UUID, SeatState], set[tuple[uuid.UUID, str]]]:
    """The wanted events' seats, with the (event, email) pairs among ``wanted`` that already
    hold a registration; one round trip.

    ``lock``: lock the events' rows first, in id order (so batches cannot deadlock), and read
    the seats under the lock. Without it the read is a plain snapshot, and ``store_batch``
    refuses to write unless the seats are still what was read.
    """
    rows = await conn.fetch(
        f"""SELECT e.*, ARRAY(
                   SELECT w.email FROM unnest($2::uuid[], $3::text[]) AS w(event_id, email)
                   JOIN registrations r ON r.event_id = w.event_id AND lower(r.email) = w.email
                                       AND r.status <> 'cancelled'
                   WHERE w.event_id = e.id) AS existing
            FROM events e WHERE e.id = ANY($1::uuid[]) ORDER BY e.id
            {"FOR NO KEY UPDATE OF e" if lock else ""}""",
        sorted({event_id for event_id, _ in wanted}),
        [event_id for event_id, _ in wanted],
        [email for _, email in wanted],
    )
    seats = {
        row["id"]: SeatState(_terms(row), row["confirmed_count"], row["waitlisted_count"])
        for row in rows
    }
    existing = {(row["id"], email) for row in rows for email in row["existing"]}
    return seats, existing


@dataclass(frozen=True)
class OutboxRows:
    """A batch's outbox rows, column by column (as ``stolive_shared.messaging.outbox`` writes
    them), and the channel that wakes the relay at commit."""

    message_ids: list[uuid.UUID]
    topics: list[str]
    keys: list[str]
    headers: list[str]  # JSON objects
    payloads: list[bytes]
    channel: str


_STORE_BATCH = """WITH seats AS (
        UPDATE events e SET confirmed_count = e.confirmed_count + d.confirmed,
                            waitlisted_count = e.waitlisted_count + d.waitlisted
        FROM unnest($13::uuid[], $14::int[], $15::int[], $16::int[], $17::int[],
                    $18::int[])
             AS d(id, confirmed, waitlisted, revision, confirmed_before,
                  waitlisted_before)
        WHERE e.id = d.id
          AND (d.confirmed = 0 OR e.capacity IS NULL
               OR e.confirmed_count + d.confirmed <= e.capacity)
        -- Checked on the row as locked (a WHERE would see the statement's snapshot,
        -- from before a batch ahead committed): was it as the batch decided?
        RETURNING e.revision = d.revision
                  AND e.confirmed_count - d.confirmed = d.confirmed_before
                  AND e.waitlisted_count - d.waitlisted = d.waitlisted_before
                  AS as_decided),
    stored AS (
        INSERT INTO registrations (id, event_id, status, name, email, organisation,
            role, region_code, profiles, newsletter, viewer_id, group_id, confirmed_at)
        SELECT d.id, d.event_id, d.status, d.name, d.email, d.organisation, d.role,
               d.region_code,
               coalesce(string_to_array(nullif(d.profiles, ''), ','), '{}'),
               d.newsletter, d.viewer_id, d.group_id,
               CASE WHEN d.status = 'confirmed' THEN now() END
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[],
                    $11::text[], $12::uuid[])
             WITH ORDINALITY AS d(id, event_id, status, name, email, organisation, role,
                                  region_code, profiles, newsletter, viewer_id,
                                  group_id, n)
        ORDER BY d.n
        ON CONFLICT (event_id, lower(email)) WHERE status <> 'cancelled' DO NOTHING
        RETURNING id, queue_number, created_at),
    queued AS (
        INSERT INTO outbox (message_id, topic, key, headers, payload)
        SELECT m.message_id, m.topic, m.key, m.headers::jsonb, m.payload
        FROM unnest($19::uuid[], $20::text[], $21::text[], $22::text[], $23::bytea[])
             WITH ORDINALITY AS m(message_id, topic, key, headers, payload, n)
        ORDER BY m.n
        RETURNING 1),
    -- Delivered at commit; wakes the relay without waiting for its poll.
    woken AS (SELECT pg_notify($24, '') FROM (SELECT count(*) FROM queued) AS q)
    -- One row, whatever was stored: the whole statement fails unless all of it was.
    SELECT array_agg(id) AS ids, array_agg(queue_number) AS queue_numbers,
           array_agg(created_at) AS created_at,
           CASE WHEN count(*) <> $25 THEN sign_up_batch_refused(
                    count(*) || ' of ' || $25 || ' stored: someone signed up meanwhile')
                WHEN (SELECT count(*) FILTER (WHERE as_decided) FROM seats) <> $26
                THEN sign_up_batch_refused('seat counts changed')
                ELSE (SELECT count(*) = 1 FROM woken) END AS stored
    FROM stored"""


async def store_batch(
    conn: asyncpg.Connection,
    before: dict[uuid.UUID, SeatState],
    changes: dict[uuid.UUID, SeatChange],
    drafts: Sequence[Registration],
    outbox: OutboxRows,
) -> list[Registration]:
    """Take a batch's seats and waiting-list places, store its registrations and queue its
    messages (waking the relay), in one statement: outside a transaction it commits alone,
    one round trip while the events' rows are locked.

    The seat UPDATE changes the events' rows only if each is still as the batch decided on
    it (``before``: same revision, same counts) and the new seats stay within the capacity;
    registrations keep the batch's order (their queue numbers follow it). If a row was not
    as decided, or a person meanwhile got an active registration elsewhere (another process's
    batch, say), the statement fails as a whole and this raises ``SeatCountsChanged``: the
    caller decides again.
    """
    if not drafts:
        return []
    ids = sorted(changes)
    arguments = (
        [d.id for d in drafts],
        [d.event_id for d in drafts],
        [d.status for d in drafts],
        [d.applicant.name for d in drafts],
        [d.applicant.email for d in drafts],
        [d.applicant.organisation for d in drafts],
        [d.applicant.role for d in drafts],
        [d.applicant.region_code for d in drafts],
        [",".join(d.applicant.profiles) for d in drafts],
        [d.applicant.newsletter for d in drafts],
        [d.viewer_id for d in drafts],
        [d.group_id for d in drafts],
        ids,
        [changes[i].confirmed for i in ids],
        [changes[i].waitlisted for i in ids],
        [before[i].terms.revision for i in ids],
        [before[i].confirmed for i in ids],
        [before[i].waitlisted for i in ids],
        outbox.message_ids,
        outbox.topics,
        outbox.keys,
        outbox.headers,
        outbox.payloads,
        outbox.channel,
        len(drafts),
        len(ids),
    )
    try:
        row = await conn.fetchrow(_STORE_BATCH, *arguments)
    except asyncpg.SerializationError as exc:
        if "sign-up batch not stored" in str(exc):
            raise SeatCountsChanged(str(exc)) from exc
        raise
    assert row is not None
    stored = {
        registration_id: (queue_number, created_at)
        for registration_id, queue_number, created_at in zip(
            row["ids"], row["queue_numbers"], row["created_at"], strict=True
        )
    }
    return [replace(d, queue_number=stored[d.id][0], created_at=stored[d.id][1]) for d in drafts]


async def find_active_many(
    conn: asyncpg.Connection, keys: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Registration]:
    """The active registrations of these (event id, normalised email) pairs."""
    if not keys:
        return {}
    rows = await conn.fetch(
        f"""SELECT {_REGISTRATION_COLUMNS} FROM registrations
            WHERE (event_id, lower(email)) IN (
                SELECT * FROM unnest($1::uuid[], $2::text[]))
              AND status <> 'cancelled'""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    found = [_registration(r) for r in rows]
    return {(r.event_id, r.applicant.email.lower()): r for r in found}


async def get_registration(
    conn: asyncpg.Connection, registration_id: uuid.UUID, *, for_update: bool = False
) -> Registration | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE id = $1{lock}", registration_id
    )
    return _registration(row) if row else None


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
                SELECT {_REGISTRATION_COLUMNS} FROM registrations
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
    return [_registration(r) for r in rows]


async def first_waitlisted(conn: asyncpg.Connection, event_id: uuid.UUID) -> Registration | None:
    row = await conn.fetchrow(
        f"SELECT {_REGISTRATION_COLUMNS} FROM registrations"
        " WHERE event_id = $1 AND status = 'waitlisted' ORDER BY queue_number LIMIT 1 FOR UPDATE",
        event_id,
    )
    return _registration(row) if row else None


async def mark_promoted(conn: asyncpg.Connection, registration: Registration) -> None:
    """Off the waiting list into a seat the caller already took."""
    await conn.execute(
        """WITH promoted AS (
               UPDATE registrations SET status = 'confirmed', confirmed_at = now()
               WHERE id = $1 AND status = 'waitlisted' RETURNING event_id)
           UPDATE events e SET waitlisted_count = e.waitlisted_count - 1
           FROM promoted WHERE e.id = promoted.event_id""",
        registration.id,
    )


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
            RETURNING {_REGISTRATION_COLUMNS}""",
        registration_id,
        organiser,
    )
    return _registration(row) if row else None


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
        f"""SELECT {_REGISTRATION_COLUMNS} FROM registrations
            WHERE event_id = $1 AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR region_code = $3) AND ($4::text IS NULL OR role = $4)
            ORDER BY queue_number""",
        event_id,
        status,
        region_code,
        role,
    )
    return [_registration(r) for r in rows]


async def events_by_start(conn: asyncpg.Connection, limit: int = 200) -> list[EventTerms]:
    rows = await conn.fetch(
        "SELECT * FROM events WHERE status <> 'draft' ORDER BY starts_at DESC LIMIT $1", limit
    )
    return [_terms(r) for r in rows]


async def person_records(conn: asyncpg.Connection, email: str) -> list[dict[str, Any]]:
    """Every registration held for this (normalised) email, each with its event's title."""
    rows = await conn.fetch(
        """SELECT r.id, r.event_id, e.title AS event_title, e.starts_at AS event_starts_at,
                  r.status, r.name, r.email, r.organisation, r.role, r.region_code, r.profiles,
                  r.newsletter, r.viewer_id, r.group_id, r.created_at, r.confirmed_at,
                  r.cancelled_at, r.cancel_reason, r.checked_in_at
           FROM registrations r JOIN events e ON e.id = r.event_id
           WHERE lower(r.email) = $1 ORDER BY r.created_at""",
        email,
    )
    return [dict(r) for r in rows]


async def erase_person(conn: asyncpg.Connection, email: str) -> list[uuid.UUID]:
    """Remove the personal fields of every registration of this email; keep status and counts.

    Published outbox rows about these registrations go too: they are kept only to republish
    after a broker loss, and an erased person's details must not come back that way.
    """
    ids: list[uuid.UUID] = [
        r["id"]
        for r in await conn.fetch(
            """UPDATE registrations SET name = NULL, email = NULL, organisation = NULL,
                   newsletter = false, erased_at = now()
               WHERE lower(email) = $1 RETURNING id""",
            email,
        )
    ]
    if ids:
        await conn.execute(
            """DELETE FROM outbox WHERE published_at IS NOT NULL
               AND encode(payload, 'escape') LIKE ANY($1::text[])""",
            [f'%"registration_id":"{i}"%' for i in ids],
        )
    return ids


async def booked_colleagues(conn: asyncpg.Connection, booker_id: uuid.UUID) -> list[Registration]:
    """The colleagues ``booker_id`` signed up, in every form they sent, in sign-up order."""
    rows = await conn.fetch(
        f"""SELECT {_REGISTRATION_COLUMNS} FROM registrations
            WHERE group_id IN (SELECT group_id FROM bookings WHERE booker_id = $1) AND id <> $1
            ORDER BY queue_number""",
        booker_id,
    )
    return [_registration(r) for r in rows]


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
            RETURNING {_REGISTRATION_COLUMNS}""",
        registration_ids,
        last_before,
    )
    return [_registration(r) for r in rows]
