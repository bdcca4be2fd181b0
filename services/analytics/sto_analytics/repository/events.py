"""The events analytics follows (``tracked_events``): the highest revision of each, the
moments it went live and ended, which ended event is due for finalisation, and which
finalised one saw viewing since (its figures to bring up to date)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class TrackedEvent:
    event_id: uuid.UUID
    revision: int
    kind: str
    status: str
    title: str
    starts_at: datetime
    ends_at: datetime
    series_code: str | None
    series_number: int | None
    went_live_at: datetime | None
    ended_at: datetime | None
    finalised_at: datetime | None

    @property
    def broadcast_minutes(self) -> float:
        """From going live to ending where both are known, else as scheduled."""
        start = self.went_live_at or self.starts_at
        end = self.ended_at or self.ends_at
        if end <= start:
            end = self.ends_at if self.ends_at > start else start
        return (end - start).total_seconds() / 60


async def save_event(
    conn: asyncpg.Connection,
    snapshot: dict[str, Any],
    *,
    went_live_at: datetime | None,
    ended_at: datetime | None,
) -> None:
    """Keep the highest revision's details; the moments it went live and ended are kept once
    known."""
    await conn.execute(
        """INSERT INTO tracked_events (event_id, revision, kind, status, title, starts_at,
               ends_at, series_code, series_number, went_live_at, ended_at, ended_seen_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                   CASE WHEN $4 = 'ended' THEN now() END)
           ON CONFLICT (event_id) DO UPDATE SET
               revision = GREATEST(tracked_events.revision, EXCLUDED.revision),
               kind = CASE WHEN EXCLUDED.revision > tracked_events.revision
                           THEN EXCLUDED.kind ELSE tracked_events.kind END,
               status = CASE WHEN EXCLUDED.revision > tracked_events.revision
                             THEN EXCLUDED.status ELSE tracked_events.status END,
               title = CASE WHEN EXCLUDED.revision > tracked_events.revision
                            THEN EXCLUDED.title ELSE tracked_events.title END,
               starts_at = CASE WHEN EXCLUDED.revision > tracked_events.revision
                                THEN EXCLUDED.starts_at ELSE tracked_events.starts_at END,
               ends_at = CASE WHEN EXCLUDED.revision > tracked_events.revision
                              THEN EXCLUDED.ends_at ELSE tracked_events.ends_at END,
               series_code = CASE WHEN EXCLUDED.revision > tracked_events.revision
                                  THEN EXCLUDED.series_code ELSE tracked_events.series_code END,
               series_number = CASE WHEN EXCLUDED.revision > tracked_events.revision
                                    THEN EXCLUDED.series_number
                                    ELSE tracked_events.series_number END,
               went_live_at = coalesce(tracked_events.went_live_at, EXCLUDED.went_live_at),
               ended_at = coalesce(tracked_events.ended_at, EXCLUDED.ended_at),
               ended_seen_at = coalesce(tracked_events.ended_seen_at, EXCLUDED.ended_seen_at)""",
        snapshot["event_id"],
        snapshot["revision"],
        snapshot["kind"],
        snapshot["status"],
        snapshot["title"],
        snapshot["starts_at"],
        snapshot["ends_at"],
        snapshot.get("series_code"),
        snapshot.get("series_number"),
        went_live_at,
        ended_at,
    )


_EVENT_COLUMNS = """event_id, revision, kind, status, title, starts_at, ends_at, series_code,
    series_number, went_live_at, ended_at, finalised_at"""


async def tracked_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> TrackedEvent | None:
    row = await conn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM tracked_events WHERE event_id = $1", event_id
    )
    return TrackedEvent(**dict(row)) if row else None


async def recent_events(
    conn: asyncpg.Connection, limit: int = 50, only: Collection[uuid.UUID] | None = None
) -> list[TrackedEvent]:
    """Live ones first, then the latest; ``only`` keeps these events (None: every event)."""
    rows = await conn.fetch(
        f"""SELECT {_EVENT_COLUMNS} FROM tracked_events
            WHERE $2::uuid[] IS NULL OR event_id = ANY($2::uuid[])
            ORDER BY (status = 'live') DESC, starts_at DESC LIMIT $1""",
        limit,
        None if only is None else list(only),
    )
    return [TrackedEvent(**dict(row)) for row in rows]


async def claim_event_to_finalise(conn: asyncpg.Connection, grace_s: float) -> TrackedEvent | None:
    """One ended, unfinalised event past its grace period, locked for this transaction
    (another worker skips it)."""
    row = await conn.fetchrow(
        f"""SELECT {_EVENT_COLUMNS} FROM tracked_events
            WHERE finalised_at IS NULL AND status = 'ended'
              AND coalesce(ended_at, ends_at) + make_interval(secs => $1) <= now()
              AND coalesce(ended_seen_at, '-infinity') + make_interval(secs => $1) <= now()
            ORDER BY coalesce(ended_at, ends_at) LIMIT 1 FOR UPDATE SKIP LOCKED""",
        grace_s,
    )
    return TrackedEvent(**dict(row)) if row else None


async def mark_finalised(conn: asyncpg.Connection, event_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE tracked_events SET finalised_at = now() WHERE event_id = $1", event_id
    )


async def claim_event_to_refresh(conn: asyncpg.Connection) -> TrackedEvent | None:
    """One finalised event that saw viewing since its figures were last written, locked for
    this transaction (another worker skips it; a beacon batch marking it waits)."""
    row = await conn.fetchrow(
        f"""SELECT {_EVENT_COLUMNS} FROM tracked_events
            WHERE figures_stale AND finalised_at IS NOT NULL
            LIMIT 1 FOR UPDATE SKIP LOCKED"""
    )
    return TrackedEvent(**dict(row)) if row else None


async def mark_refreshed(conn: asyncpg.Connection, event_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE tracked_events SET figures_stale = false WHERE event_id = $1", event_id
    )
