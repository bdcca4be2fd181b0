"""SQL for the analytics read model in PostgreSQL ($1 parameters, domain objects out).

Every write is idempotent: sets (``ON CONFLICT DO NOTHING``), maxima (``GREATEST``), the
highest revision, or "once" (``finalised_at IS NULL``), so at-least-once replays and two
workers during a rebalance leave the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from sto_analytics.domain import RegistrationTally, WatchFigures

# -- registrations ------------------------------------------------------------------------


async def save_registration_tallies(
    conn: asyncpg.Connection, tallies: dict[uuid.UUID, RegistrationTally]
) -> None:
    await conn.executemany(
        """INSERT INTO registration_counts (event_id, confirmed, waitlisted, cancelled)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (event_id) DO UPDATE SET confirmed = EXCLUDED.confirmed,
               waitlisted = EXCLUDED.waitlisted, cancelled = EXCLUDED.cancelled,
               updated_at = now()""",
        [(event_id, t.confirmed, t.waitlisted, t.cancelled) for event_id, t in tallies.items()],
    )


async def registration_tally(conn: asyncpg.Connection, event_id: uuid.UUID) -> RegistrationTally:
    row = await conn.fetchrow(
        "SELECT confirmed, waitlisted, cancelled FROM registration_counts WHERE event_id = $1",
        event_id,
    )
    if row is None:
        return RegistrationTally()
    return RegistrationTally(**dict(row))


@dataclass(frozen=True)
class RegistrantRow:
    registration_id: uuid.UUID
    event_id: uuid.UUID
    viewer_id: str
    status: str
    region_code: str | None
    role: str
    name: str
    checked_in: bool


async def save_registrants(conn: asyncpg.Connection, rows: Sequence[RegistrantRow]) -> None:
    """Upsert registrants; an erased person's name stays erased."""
    await conn.executemany(
        """INSERT INTO registrants (registration_id, event_id, viewer_id, status, region_code,
                                    role, name, checked_in)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (registration_id) DO UPDATE SET viewer_id = EXCLUDED.viewer_id,
               status = EXCLUDED.status, region_code = EXCLUDED.region_code,
               role = EXCLUDED.role,
               name = CASE WHEN registrants.erased THEN '' ELSE EXCLUDED.name END,
               checked_in = registrants.checked_in OR EXCLUDED.checked_in, updated_at = now()""",
        [
            (
                r.registration_id,
                r.event_id,
                r.viewer_id,
                r.status,
                r.region_code,
                r.role,
                r.name,
                r.checked_in,
            )
            for r in rows
        ],
    )


async def erase_names(conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]) -> None:
    """A person was erased: their name goes, the counts stay (the row may come later)."""
    await conn.executemany(
        """INSERT INTO registrants (registration_id, event_id, viewer_id, status, role, erased)
           VALUES ($1, '00000000-0000-0000-0000-000000000000', '', 'cancelled', '', true)
           ON CONFLICT (registration_id) DO UPDATE SET name = '', erased = true""",
        [(registration_id,) for registration_id in registration_ids],
    )


# -- watching -----------------------------------------------------------------------------


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


_VIEWS = """
    WITH numbered AS (
        SELECT viewer_id, mode, minute,
               minute - row_number() OVER (PARTITION BY viewer_id, mode ORDER BY minute) AS run
        FROM viewer_minutes WHERE event_id = $1
    )
"""


async def watch_figures(conn: asyncpg.Connection, event_id: uuid.UUID) -> WatchFigures:
    """Views (runs of consecutive minutes), watch minutes and unique viewers (see domain)."""
    rows = await conn.fetch(
        _VIEWS
        + """SELECT mode, count(DISTINCT (viewer_id, run)) AS views, count(*) AS minutes
             FROM numbered GROUP BY mode""",
        event_id,
    )
    unique_viewers = await conn.fetchval(
        "SELECT count(DISTINCT viewer_id) FROM viewer_minutes WHERE event_id = $1", event_id
    )
    by_mode = {row["mode"]: row for row in rows}
    live, replay = by_mode.get("live"), by_mode.get("replay")
    return WatchFigures(
        views_live=live["views"] if live else 0,
        views_replay=replay["views"] if replay else 0,
        unique_viewers=unique_viewers,
        watch_minutes_live=live["minutes"] if live else 0,
        watch_minutes_replay=replay["minutes"] if replay else 0,
    )


@dataclass(frozen=True)
class GroupFigures:
    group: str
    viewers: int
    views: int
    watch_minutes: int


async def watching_by(
    conn: asyncpg.Connection, event_id: uuid.UUID, by: Literal["region_code", "role"]
) -> list[GroupFigures]:
    """Viewers, views and watch minutes per region or role of the registration behind the
    join link; anonymous viewers fall under 'onbekend'."""
    column = {"region_code": "r.region_code", "role": "r.role"}[by]
    rows = await conn.fetch(
        _VIEWS
        + f"""SELECT coalesce({column}, 'onbekend') AS grp,
                     count(DISTINCT n.viewer_id) AS viewers,
                     count(DISTINCT (n.viewer_id, n.mode, n.run)) AS views,
                     count(*) AS watch_minutes
              FROM numbered n
              LEFT JOIN registrants r ON r.event_id = $1 AND r.viewer_id = n.viewer_id
              GROUP BY 1 ORDER BY 2 DESC, 1""",
        event_id,
    )
    return [
        GroupFigures(row["grp"], row["viewers"], row["views"], row["watch_minutes"]) for row in rows
    ]


@dataclass(frozen=True)
class RegistrantWatching:
    registration_id: uuid.UUID
    status: str
    region_code: str | None
    role: str
    name: str
    checked_in: bool
    minutes_watched: int
    watched_live: bool


async def registrant_watching(
    conn: asyncpg.Connection, event_id: uuid.UUID
) -> list[RegistrantWatching]:
    """Every registrant of the event with the minutes their join link watched."""
    rows = await conn.fetch(
        """SELECT r.registration_id, r.status, r.region_code, r.role, r.name, r.checked_in,
                  count(DISTINCT m.minute) AS minutes_watched,
                  coalesce(bool_or(m.mode = 'live'), false) AS watched_live
           FROM registrants r
           LEFT JOIN viewer_minutes m ON m.event_id = r.event_id AND m.viewer_id = r.viewer_id
           WHERE r.event_id = $1
           GROUP BY r.registration_id ORDER BY r.name, r.registration_id""",
        event_id,
    )
    return [RegistrantWatching(**dict(row)) for row in rows]


# -- events -------------------------------------------------------------------------------


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


async def recent_events(conn: asyncpg.Connection, limit: int = 50) -> list[TrackedEvent]:
    rows = await conn.fetch(
        f"""SELECT {_EVENT_COLUMNS} FROM tracked_events
            ORDER BY (status = 'live') DESC, starts_at DESC LIMIT $1""",
        limit,
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


# -- final figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class BroadcastFigures:
    event_id: uuid.UUID
    title: str
    series_code: str | None
    series_number: int | None
    starts_at: datetime
    broadcast_minutes: float
    views_live: int
    views_replay: int
    unique_viewers: int
    watch_minutes_live: int
    watch_minutes_replay: int
    average_live_viewers: float
    peak_live_viewers: int
    peak_at: datetime | None
    registered: int
    confirmed: int
    waitlisted: int
    cancelled: int
    watched: int
    attended: int
    min_minutes: float
    computed_at: datetime | None = None


async def save_broadcast_figures(conn: asyncpg.Connection, figures: BroadcastFigures) -> None:
    await conn.execute(
        """INSERT INTO broadcast_figures (event_id, title, series_code, series_number,
               starts_at, broadcast_minutes, views_live, views_replay, unique_viewers,
               watch_minutes_live, watch_minutes_replay, average_live_viewers,
               peak_live_viewers, peak_at, registered, confirmed, waitlisted, cancelled,
               watched, attended, min_minutes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $21)
           ON CONFLICT (event_id) DO NOTHING""",
        figures.event_id,
        figures.title,
        figures.series_code,
        figures.series_number,
        figures.starts_at,
        figures.broadcast_minutes,
        figures.views_live,
        figures.views_replay,
        figures.unique_viewers,
        figures.watch_minutes_live,
        figures.watch_minutes_replay,
        figures.average_live_viewers,
        figures.peak_live_viewers,
        figures.peak_at,
        figures.registered,
        figures.confirmed,
        figures.waitlisted,
        figures.cancelled,
        figures.watched,
        figures.attended,
        figures.min_minutes,
    )


async def broadcast_figures(
    conn: asyncpg.Connection, event_id: uuid.UUID
) -> BroadcastFigures | None:
    row = await conn.fetchrow("SELECT * FROM broadcast_figures WHERE event_id = $1", event_id)
    return BroadcastFigures(**dict(row)) if row else None


async def series_broadcasts(conn: asyncpg.Connection, series_code: str) -> list[BroadcastFigures]:
    rows = await conn.fetch(
        """SELECT * FROM broadcast_figures WHERE series_code = $1
           ORDER BY series_number NULLS LAST, starts_at""",
        series_code,
    )
    return [BroadcastFigures(**dict(row)) for row in rows]


async def series_codes(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        """SELECT DISTINCT series_code FROM broadcast_figures
           WHERE series_code IS NOT NULL ORDER BY series_code"""
    )
    return [row["series_code"] for row in rows]


@dataclass(frozen=True)
class AttendanceRow:
    registration_id: uuid.UUID
    event_id: uuid.UUID
    minutes_watched: int
    watched_live: bool
    checked_in: bool
    attended: bool


async def save_attendance(conn: asyncpg.Connection, rows: Sequence[AttendanceRow]) -> None:
    await conn.executemany(
        """INSERT INTO attendance (registration_id, event_id, minutes_watched, watched_live,
               checked_in, attended) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (registration_id) DO NOTHING""",
        [
            (
                r.registration_id,
                r.event_id,
                r.minutes_watched,
                r.watched_live,
                r.checked_in,
                r.attended,
            )
            for r in rows
        ],
    )


@dataclass(frozen=True)
class Certificate:
    registration_id: uuid.UUID
    name: str
    title: str
    starts_at: datetime
    minutes_watched: int
    checked_in: bool
    attended: bool


async def certificate(conn: asyncpg.Connection, registration_id: uuid.UUID) -> Certificate | None:
    """What a registrant's certificate says, once their event is finalised."""
    row = await conn.fetchrow(
        """SELECT a.registration_id, r.name, e.title, e.starts_at, a.minutes_watched,
                  a.checked_in, a.attended
           FROM attendance a
           JOIN tracked_events e ON e.event_id = a.event_id
           JOIN registrants r ON r.registration_id = a.registration_id
           WHERE a.registration_id = $1""",
        registration_id,
    )
    return Certificate(**dict(row)) if row else None
