"""What finalisation writes for an ended event and what is read from it afterwards: the
figures (per event and per series, brought up to date when viewing comes later),
per-registrant attendance and the certificates (``broadcast_figures``, ``attendance``,
``certificates``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sto_analytics.domain import AttendedAs


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
    attended_live: int = 0
    attended_replay: int = 0
    replay_attendance_days: float = 30.0
    computed_at: datetime | None = None


_FIGURE_COLUMNS = """title, series_code, series_number, starts_at, broadcast_minutes,
    views_live, views_replay, unique_viewers, watch_minutes_live, watch_minutes_replay,
    average_live_viewers, peak_live_viewers, peak_at, registered, confirmed, waitlisted,
    cancelled, watched, attended, min_minutes, attended_live, attended_replay,
    replay_attendance_days"""


async def save_broadcast_figures(conn: asyncpg.Connection, figures: BroadcastFigures) -> None:
    """Write the event's figures as computed now (a later computation replaces them: they
    follow replay viewing after the end)."""
    updates = ", ".join(
        f"{column.strip()} = EXCLUDED.{column.strip()}" for column in _FIGURE_COLUMNS.split(",")
    )
    await conn.execute(
        f"""INSERT INTO broadcast_figures (event_id, {_FIGURE_COLUMNS})
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $21, $22, $23, $24)
           ON CONFLICT (event_id) DO UPDATE SET {updates}, computed_at = now()""",
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
        figures.attended_live,
        figures.attended_replay,
        figures.replay_attendance_days,
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
    minutes_live: int
    minutes_replay: int
    checked_in: bool
    attended_as: AttendedAs | None

    @property
    def minutes_watched(self) -> int:
        return self.minutes_live + self.minutes_replay

    @property
    def attended(self) -> bool:
        return self.attended_as is not None


def _attendance_values(r: AttendanceRow) -> tuple[object, ...]:
    return (
        r.registration_id,
        r.event_id,
        r.minutes_watched,
        r.minutes_live > 0,
        r.checked_in,
        r.attended,
        r.minutes_live,
        r.minutes_replay,
        r.attended_as,
    )


_INSERT_ATTENDANCE = """INSERT INTO attendance (registration_id, event_id, minutes_watched,
        watched_live, checked_in, attended, minutes_live, minutes_replay, attended_as)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"""


async def save_attendance(conn: asyncpg.Connection, rows: Sequence[AttendanceRow]) -> None:
    """The attendance as finalised (written once)."""
    await conn.executemany(
        _INSERT_ATTENDANCE + " ON CONFLICT (registration_id) DO NOTHING",
        [_attendance_values(r) for r in rows],
    )


async def record_replay_attendance(conn: asyncpg.Connection, rows: Sequence[AttendanceRow]) -> None:
    """Registrants who reached replay attendance after the finalisation: their row (made
    now, or the one finalisation wrote without attendance) says so."""
    await conn.executemany(
        _INSERT_ATTENDANCE
        + """ ON CONFLICT (registration_id) DO UPDATE SET
                minutes_watched = EXCLUDED.minutes_watched, attended = true,
                minutes_live = EXCLUDED.minutes_live,
                minutes_replay = EXCLUDED.minutes_replay, attended_as = 'replay'
              WHERE NOT attendance.attended""",
        [_attendance_values(r) for r in rows],
    )


async def attendees(conn: asyncpg.Connection, event_id: uuid.UUID) -> set[uuid.UUID]:
    """Registrants recorded as attended (at the finalisation or later, by replay)."""
    rows = await conn.fetch(
        "SELECT registration_id FROM attendance WHERE event_id = $1 AND attended", event_id
    )
    return {row["registration_id"] for row in rows}


@dataclass(frozen=True)
class Certificate:
    registration_id: uuid.UUID
    event_id: uuid.UUID
    name: str
    title: str
    starts_at: datetime
    minutes_live: int
    minutes_replay: int
    checked_in: bool
    attended_as: str
    verification_code: str
    issued_at: datetime


_CERTIFICATE_COLUMNS = """registration_id, event_id, name, title, starts_at, minutes_live,
    minutes_replay, checked_in, attended_as, verification_code, issued_at"""


async def issue_certificates(
    conn: asyncpg.Connection, event_id: uuid.UUID, codes: Callable[[], str]
) -> set[uuid.UUID]:
    """A certificate, with a fresh verification code from ``codes``, for each registrant of
    the event recorded as attended who has none yet, with the name they registered with
    (kept for the certificate's own retention); the registrants who hold one now."""
    due = await conn.fetch(
        """SELECT a.registration_id, r.name, e.title, e.starts_at, a.minutes_live,
                  a.minutes_replay, a.checked_in, a.attended_as
           FROM attendance a
           JOIN tracked_events e ON e.event_id = a.event_id
           JOIN registrants r ON r.registration_id = a.registration_id
           WHERE a.event_id = $1 AND a.attended AND NOT r.erased AND r.name <> ''
             AND NOT EXISTS (SELECT 1 FROM certificates c
                             WHERE c.registration_id = a.registration_id)""",
        event_id,
    )
    await conn.executemany(
        """INSERT INTO certificates (registration_id, event_id, name, title, starts_at,
               minutes_watched, minutes_live, minutes_replay, checked_in, attended_as,
               verification_code)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT DO NOTHING""",
        [
            (
                row["registration_id"], event_id, row["name"], row["title"], row["starts_at"],
                row["minutes_live"] + row["minutes_replay"], row["minutes_live"],
                row["minutes_replay"], row["checked_in"], row["attended_as"] or "live", codes(),
            )
            for row in due
        ],
    )  # fmt: skip
    held = await conn.fetch(
        "SELECT registration_id FROM certificates WHERE event_id = $1", event_id
    )
    return {row["registration_id"] for row in held}


async def certificate(conn: asyncpg.Connection, registration_id: uuid.UUID) -> Certificate | None:
    """A registrant's certificate, if one was issued and is still kept."""
    row = await conn.fetchrow(
        f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates WHERE registration_id = $1",
        registration_id,
    )
    return Certificate(**dict(row)) if row else None


async def certificate_by_code(conn: asyncpg.Connection, code: str) -> Certificate | None:
    """The certificate with this verification code (its stored form), if kept."""
    row = await conn.fetchrow(
        f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates WHERE verification_code = $1", code
    )
    return Certificate(**dict(row)) if row else None


async def certificates_of(
    conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]
) -> list[Certificate]:
    rows = await conn.fetch(
        f"""SELECT {_CERTIFICATE_COLUMNS} FROM certificates
            WHERE registration_id = ANY($1::uuid[]) ORDER BY starts_at""",
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
