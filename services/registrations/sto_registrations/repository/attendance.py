"""SQL for what analytics said of each registrant's attendance (``attendance``)."""

from __future__ import annotations

import uuid

import asyncpg

from sto_registrations.attendance import Attendance


async def get_attendance(conn: asyncpg.Connection, registration_id: uuid.UUID) -> Attendance | None:
    row = await conn.fetchrow(
        """SELECT registration_id, attended_as, certificate, minutes_live, minutes_replay
           FROM attendance WHERE registration_id = $1""",
        registration_id,
    )
    return Attendance(**dict(row)) if row else None


async def save_attendance(conn: asyncpg.Connection, attendance: Attendance) -> None:
    await conn.execute(
        """INSERT INTO attendance (registration_id, attended_as, certificate, minutes_live,
                                   minutes_replay)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (registration_id) DO UPDATE SET attended_as = EXCLUDED.attended_as,
               certificate = EXCLUDED.certificate, minutes_live = EXCLUDED.minutes_live,
               minutes_replay = EXCLUDED.minutes_replay, recorded_at = now()""",
        attendance.registration_id,
        attendance.attended_as,
        attendance.certificate,
        attendance.minutes_live,
        attendance.minutes_replay,
    )
