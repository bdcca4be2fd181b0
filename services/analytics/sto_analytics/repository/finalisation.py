"""What finalisation writes once per ended event and what is read from it afterwards: the
final figures (per event and per series), per-registrant attendance and the certificate
(``broadcast_figures``, ``attendance``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


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
    issued_at: datetime


async def issue_certificates(conn: asyncpg.Connection, event_id: uuid.UUID) -> int:
    """A certificate for each registrant who attended the finalised event, with the name
    they registered with (kept for the certificate's own retention)."""
    result: str = await conn.execute(
        """INSERT INTO certificates (registration_id, event_id, name, title, starts_at,
                                     minutes_watched, checked_in)
           SELECT a.registration_id, a.event_id, r.name, e.title, e.starts_at,
                  a.minutes_watched, a.checked_in
           FROM attendance a
           JOIN tracked_events e ON e.event_id = a.event_id
           JOIN registrants r ON r.registration_id = a.registration_id
           WHERE a.event_id = $1 AND a.attended AND NOT r.erased AND r.name <> ''
           ON CONFLICT (registration_id) DO NOTHING""",
        event_id,
    )
    return int(result.split()[-1])


async def certificate(conn: asyncpg.Connection, registration_id: uuid.UUID) -> Certificate | None:
    """A registrant's certificate, if one was issued and is still kept."""
    row = await conn.fetchrow(
        """SELECT registration_id, name, title, starts_at, minutes_watched, checked_in,
                  issued_at
           FROM certificates WHERE registration_id = $1""",
        registration_id,
    )
    return Certificate(**dict(row)) if row else None


async def certificates_of(
    conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]
) -> list[Certificate]:
    rows = await conn.fetch(
        """SELECT registration_id, name, title, starts_at, minutes_watched, checked_in,
                  issued_at
           FROM certificates WHERE registration_id = ANY($1::uuid[]) ORDER BY starts_at""",
        list(registration_ids),
    )
    return [Certificate(**dict(row)) for row in rows]


async def withdraw_certificates(
    conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]
) -> int:
    """An erased person's certificates go at once."""
    result: str = await conn.execute(
        "DELETE FROM certificates WHERE registration_id = ANY($1::uuid[])",
        list(registration_ids),
    )
    return int(result.split()[-1])


async def expire_certificates(conn: asyncpg.Connection, issued_before: datetime, limit: int) -> int:
    """At most ``limit`` certificates past their retention go (rows taken SKIP LOCKED: two
    workers never take the same)."""
    result: str = await conn.execute(
        """DELETE FROM certificates WHERE registration_id IN (
               SELECT registration_id FROM certificates WHERE issued_at < $1
               LIMIT $2 FOR UPDATE SKIP LOCKED)""",
        issued_before,
        limit,
    )
    return int(result.split()[-1])
