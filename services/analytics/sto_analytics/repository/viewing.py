"""What the beacon batches write and the live figures read: the (viewer, mode, minute)
entries, the minutes of the recording replay viewers saw, the live count per event with its
peak, and the highest count per minute (``viewer_minutes``, ``recording_minutes``,
``live_counts``, ``live_minutes``); and the mark that tells the periodic job that viewing
arrived after an event's finalisation (``tracked_events.figures_stale``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


async def add_viewer_minutes(
    conn: asyncpg.Connection, rows: Sequence[tuple[uuid.UUID, str, str, int]]
) -> None:
    """Add (event, viewer, mode, minute) entries; ones already there change nothing."""
    if not rows:
        return
    events, viewers, modes, minutes = zip(*rows, strict=True)
    await conn.execute(
        """INSERT INTO viewer_minutes (event_id, viewer_id, mode, minute)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[])
           ON CONFLICT DO NOTHING""",
        list(events),
        list(viewers),
        list(modes),
        list(minutes),
    )


async def add_recording_minutes(
    conn: asyncpg.Connection, rows: Sequence[tuple[uuid.UUID, str, int, datetime]]
) -> None:
    """Add (event, viewer, minute of the recording, when shown) entries; each keeps the first
    moment it was shown (a minimum: order-free and idempotent)."""
    if not rows:
        return
    events, viewers, minutes, shown = zip(*rows, strict=True)
    await conn.execute(
        """INSERT INTO recording_minutes AS r (event_id, viewer_id, minute, first_watched_at)
           SELECT event_id, viewer_id, minute, min(shown)
           FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::timestamptz[])
                AS t(event_id, viewer_id, minute, shown)
           GROUP BY 1, 2, 3
           ON CONFLICT (event_id, viewer_id, minute) DO UPDATE
               SET first_watched_at = EXCLUDED.first_watched_at
               WHERE EXCLUDED.first_watched_at < r.first_watched_at""",
        list(events),
        list(viewers),
        list(minutes),
        list(shown),
    )


async def mark_figures_stale(conn: asyncpg.Connection, event_ids: Sequence[uuid.UUID]) -> None:
    """Viewing of already finalised events arrived: the periodic job brings their figures up
    to date. The rows are locked in id order (two writers never deadlock), and a job holding
    one makes this wait, so the mark always lands after the job has read the minutes."""
    if not event_ids:
        return
    await conn.execute(
        """UPDATE tracked_events SET figures_stale = true
           WHERE event_id IN (SELECT event_id FROM tracked_events
                              WHERE event_id = ANY($1::uuid[]) AND finalised_at IS NOT NULL
                              ORDER BY event_id FOR UPDATE)""",
        sorted(set(event_ids)),
    )


@dataclass(frozen=True)
class LiveRow:
    event_id: uuid.UUID
    viewers: int
    peak: int
    peak_at: datetime | None
    by_region: dict[str, int]
    by_role: dict[str, int]
    counted_through: datetime | None


async def save_live_counts(conn: asyncpg.Connection, rows: Sequence[LiveRow]) -> None:
    """The count now is replaced; the peak only ever rises (its first moment is kept)."""
    await conn.executemany(
        """INSERT INTO live_counts (event_id, viewers, peak, peak_at, by_region, by_role,
                                    counted_through, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now())
           ON CONFLICT (event_id) DO UPDATE SET viewers = EXCLUDED.viewers,
               peak = GREATEST(live_counts.peak, EXCLUDED.peak),
               peak_at = CASE WHEN EXCLUDED.peak > live_counts.peak THEN EXCLUDED.peak_at
                              ELSE live_counts.peak_at END,
               by_region = EXCLUDED.by_region, by_role = EXCLUDED.by_role,
               counted_through = GREATEST(live_counts.counted_through, EXCLUDED.counted_through),
               updated_at = now()""",
        [
            (r.event_id, r.viewers, r.peak, r.peak_at, r.by_region, r.by_role, r.counted_through)
            for r in rows
        ],
    )


async def raise_live_minutes(
    conn: asyncpg.Connection, rows: Sequence[tuple[uuid.UUID, int, int]]
) -> None:
    """(event, minute, live count seen): each minute keeps the highest count seen in it."""
    await conn.executemany(
        """INSERT INTO live_minutes (event_id, minute, viewers) VALUES ($1, $2, $3)
           ON CONFLICT (event_id, minute)
           DO UPDATE SET viewers = GREATEST(live_minutes.viewers, EXCLUDED.viewers)""",
        rows,
    )


@dataclass(frozen=True)
class LiveNow:
    event_id: uuid.UUID
    viewers: int
    peak: int
    peak_at: datetime | None
    by_region: dict[str, int]
    by_role: dict[str, int]
    updated_at: datetime | None


async def live_now(conn: asyncpg.Connection, event_id: uuid.UUID) -> LiveNow:
    row = await conn.fetchrow(
        """SELECT viewers, peak, peak_at, by_region, by_role, updated_at
           FROM live_counts WHERE event_id = $1""",
        event_id,
    )
    if row is None:
        return LiveNow(event_id, 0, 0, None, {}, {}, None)
    return LiveNow(event_id=event_id, **dict(row))


async def total_live_viewers(conn: asyncpg.Connection) -> int:
    """Live viewers now over every event: the workers rewrite each count as viewers expire."""
    total: int = await conn.fetchval("SELECT coalesce(sum(viewers), 0) FROM live_counts")
    return total


async def live_minutes(conn: asyncpg.Connection, event_id: uuid.UUID) -> list[tuple[int, int]]:
    rows = await conn.fetch(
        "SELECT minute, viewers FROM live_minutes WHERE event_id = $1 ORDER BY minute", event_id
    )
    return [(row["minute"], row["viewers"]) for row in rows]
