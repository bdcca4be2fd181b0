"""SQL of everything analytics holds about one person's registrations (their export): how
they registered for the figures, what they watched, whether they attended, certificates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg


async def person_data(
    conn: asyncpg.Connection, registration_ids: Sequence[uuid.UUID]
) -> list[dict[str, Any]]:
    """One entry per registration known here, with the minutes watched (live, and replay by
    ``domain.replay_minutes``), the attendance and the certificate, where there is one."""
    rows = await conn.fetch(
        """SELECT r.registration_id, r.event_id, e.title AS event_title,
                  e.starts_at AS event_starts_at, r.status, r.region_code, r.role, r.name,
                  r.checked_in,
                  (SELECT count(*) FROM viewer_minutes m
                   WHERE m.event_id = r.event_id AND m.viewer_id = r.viewer_id
                     AND m.mode = 'live') AS minutes_live,
                  coalesce(nullif((SELECT count(*) FROM recording_minutes g
                                   WHERE g.event_id = r.event_id
                                     AND g.viewer_id = r.viewer_id), 0),
                           (SELECT count(*) FROM viewer_minutes m
                            WHERE m.event_id = r.event_id AND m.viewer_id = r.viewer_id
                              AND m.mode = 'replay')) AS minutes_replay,
                  a.attended, a.attended_as, a.minutes_watched AS attendance_minutes,
                  c.issued_at AS certificate_issued_at,
                  c.verification_code AS certificate_verification_code
           FROM registrants r
           LEFT JOIN tracked_events e ON e.event_id = r.event_id
           LEFT JOIN attendance a ON a.registration_id = r.registration_id
           LEFT JOIN certificates c ON c.registration_id = r.registration_id
           WHERE r.registration_id = ANY($1::uuid[]) AND NOT r.erased
           ORDER BY e.starts_at""",
        list(registration_ids),
    )
    return [dict(row) for row in rows]
