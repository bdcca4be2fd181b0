"""SQL of reminders: one row per (registration, offset), planned, claimed when due, settled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sto_notifications.domain import PlannedReminder
from sto_notifications.repository.registrations import (
    EVENT_COLUMNS,
    REGISTRATION_COLUMNS,
    EventRow,
    RegistrationRow,
)


async def plan_reminders(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    event_id: uuid.UUID,
    revision: int,
    planned: list[PlannedReminder],
) -> None:
    """Make the registration's reminders match the plan: new offsets added, moved ones
    re-armed for the new revision, offsets no longer in the schedule dropped. A reminder
    already queued for this very revision and moment stays as it is."""
    await conn.execute(
        """UPDATE reminders SET status = 'dropped'
           WHERE registration_id = $1 AND status = 'pending'
             AND NOT (offset_minutes = ANY($2::int[]))""",
        registration_id,
        [p.offset_minutes for p in planned],
    )
    await conn.executemany(
        """INSERT INTO reminders (registration_id, offset_minutes, event_id, event_revision,
               due_at, status)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (registration_id, offset_minutes) DO UPDATE SET
               event_revision = EXCLUDED.event_revision, due_at = EXCLUDED.due_at,
               status = EXCLUDED.status, email_id = NULL
           WHERE reminders.event_revision <> EXCLUDED.event_revision
              OR reminders.due_at <> EXCLUDED.due_at
              OR reminders.status = 'dropped'""",
        [
            (registration_id, p.offset_minutes, event_id, revision, p.due_at, p.status)
            for p in planned
        ],
    )


async def drop_reminders(
    conn: asyncpg.Connection,
    *,
    registration_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> int:
    result: str = await conn.execute(
        """UPDATE reminders SET status = 'dropped'
           WHERE status = 'pending' AND (registration_id = $1 OR event_id = $2)""",
        registration_id,
        event_id,
    )
    return int(result.split()[-1])


@dataclass(frozen=True)
class DueReminder:
    registration_id: uuid.UUID
    offset_minutes: int
    event_revision: int
    due_at: datetime
    event: EventRow
    registration: RegistrationRow


async def claim_due_reminders(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[DueReminder]:
    """Pending reminders due by ``now``, locked so a second scheduler skips them."""
    rows = await conn.fetch(
        f"""SELECT r.offset_minutes, r.event_revision, r.due_at,
                   {", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))},
                   {
            ", ".join(
                "g." + c.strip() + " AS g_" + c.strip() for c in REGISTRATION_COLUMNS.split(",")
            )
        }
            FROM reminders r
            JOIN event_schedule e ON e.event_id = r.event_id
            JOIN registrations g ON g.registration_id = r.registration_id
            WHERE r.status = 'pending' AND r.due_at <= $1
            ORDER BY r.due_at LIMIT $2
            FOR UPDATE OF r SKIP LOCKED""",
        now,
        limit,
    )
    due = []
    for row in rows:
        data = dict(row)
        registration = RegistrationRow(
            **{k[2:]: data.pop(k) for k in list(data) if k.startswith("g_")}
        )
        minutes = data.pop("offset_minutes")
        revision = data.pop("event_revision")
        due_at = data.pop("due_at")
        event = EventRow(
            **{**data, "reminder_offsets_hours": tuple(data["reminder_offsets_hours"])}
        )
        due.append(
            DueReminder(
                registration.registration_id, minutes, revision, due_at, event, registration
            )
        )
    return due


async def settle_reminder(
    conn: asyncpg.Connection,
    registration_id: uuid.UUID,
    minutes: int,
    status: str,
    email_id: uuid.UUID | None,
) -> None:
    await conn.execute(
        "UPDATE reminders SET status = $3, email_id = $4"
        " WHERE registration_id = $1 AND offset_minutes = $2",
        registration_id,
        minutes,
        status,
        email_id,
    )


async def next_reminder_at(conn: asyncpg.Connection) -> datetime | None:
    at: datetime | None = await conn.fetchval(
        "SELECT min(due_at) FROM reminders WHERE status = 'pending'"
    )
    return at


async def reminders_of(
    conn: asyncpg.Connection, registration_id: uuid.UUID
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT offset_minutes, event_revision, due_at, status, email_id FROM reminders"
        " WHERE registration_id = $1 ORDER BY due_at",
        registration_id,
    )
    return [dict(r) for r in rows]
