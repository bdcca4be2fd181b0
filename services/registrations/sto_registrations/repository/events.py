"""SQL for what this service knows of each event: its terms (learned from the events topic)
and its seats, counted on the event's row beside the waiting-list length."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import asyncpg

from sto_registrations.domain import EventTerms, SeatState
from sto_registrations.repository.rows import terms_of
from stolive_shared.contracts.events import EventSnapshot


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
    return previous or EventTerms.of(event)


async def get_terms(
    conn: asyncpg.Connection, event_id: uuid.UUID, *, for_update: bool = False
) -> EventTerms | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM events WHERE id = $1{lock}", event_id)
    return terms_of(row) if row else None


async def open_events(conn: asyncpg.Connection, now: datetime) -> list[SeatState]:
    rows = await conn.fetch(
        "SELECT * FROM events WHERE status IN ('published', 'live') AND ends_at > $1"
        " ORDER BY starts_at LIMIT 100",
        now,
    )
    return [SeatState(terms_of(r), r["confirmed_count"], r["waitlisted_count"]) for r in rows]


async def events_by_start(
    conn: asyncpg.Connection, limit: int = 200, only: Collection[uuid.UUID] | None = None
) -> list[EventTerms]:
    """Every event but drafts (``only``: of these ids): the coming ones first, soonest first
    (today's check-in on top), then the past ones, most recent first."""
    rows = await conn.fetch(
        """SELECT * FROM events WHERE status <> 'draft' AND ($2::uuid[] IS NULL OR id = ANY($2))
           ORDER BY ends_at < now(), CASE WHEN ends_at >= now() THEN starts_at END,
                    starts_at DESC
           LIMIT $1""",
        limit,
        None if only is None else list(only),
    )
    return [terms_of(r) for r in rows]


async def seat_state(
    conn: asyncpg.Connection, event_id: uuid.UUID, *, for_update: bool = True
) -> SeatState | None:
    """The event's terms, seats taken and waiting-list length (``for_update``: its row
    locked till commit)."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT * FROM events WHERE id = $1{lock}", event_id)
    if row is None:
        return None
    return SeatState(terms_of(row), row["confirmed_count"], row["waitlisted_count"])
