"""Registrations in the read model: the tallies per event and the registrants behind them
(``registration_counts``, ``registrants``), written by the registrations agent's flushes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from sto_analytics.domain import RegistrationTally


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
    name: str  # opened from the sealed contact; '' when it cannot be read (erased)
    checked_in: bool
    school_code: str | None = None
    # An organiser took the check-in back: the one case that clears ``checked_in``.
    check_in_undone: bool = False


async def save_registrants(conn: asyncpg.Connection, rows: Sequence[RegistrantRow]) -> None:
    """Upsert registrants; an erased person's name stays erased. A check-in stays once
    written (a worker that has not seen it yet cannot clear it), unless it was undone."""
    await conn.executemany(
        """INSERT INTO registrants (registration_id, event_id, viewer_id, status, region_code,
                                    role, name, checked_in, school_code)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (registration_id) DO UPDATE SET viewer_id = EXCLUDED.viewer_id,
               status = EXCLUDED.status, region_code = EXCLUDED.region_code,
               role = EXCLUDED.role, school_code = EXCLUDED.school_code,
               name = CASE WHEN registrants.erased THEN '' ELSE EXCLUDED.name END,
               checked_in = CASE WHEN $10::boolean THEN false
                                 ELSE registrants.checked_in OR EXCLUDED.checked_in END,
               updated_at = now()""",
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
                r.school_code,
                r.check_in_undone,
            )
            for r in rows
        ],
    )


async def anonymise_names(conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]) -> None:
    """Registrations past their retention period: their names go (their keys are gone too,
    so a later flush cannot bring them back), the counts and certificates stay."""
    await conn.execute(
        "UPDATE registrants SET name = '' WHERE registration_id = ANY($1::uuid[])",
        list(registration_ids),
    )


async def erase_names(conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]) -> None:
    """A person was erased: their name goes, the counts stay (the row may come later)."""
    await conn.executemany(
        """INSERT INTO registrants (registration_id, event_id, viewer_id, status, role, erased)
           VALUES ($1, '00000000-0000-0000-0000-000000000000', '', 'cancelled', '', true)
           ON CONFLICT (registration_id) DO UPDATE SET name = '', erased = true""",
        [(registration_id,) for registration_id in registration_ids],
    )
