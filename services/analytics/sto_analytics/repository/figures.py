"""Watch figures computed now from the watched minutes: views, watch time and unique viewers,
per region or role, and per registrant (read by the figures, the CSV and the finalisation)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from sto_analytics.domain import WatchFigures

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
    school_code: str | None = None


async def registrant_watching(
    conn: asyncpg.Connection, event_id: uuid.UUID
) -> list[RegistrantWatching]:
    """Every registrant of the event with the minutes their join link watched."""
    rows = await conn.fetch(
        """SELECT r.registration_id, r.status, r.region_code, r.role, r.name, r.checked_in,
                  r.school_code,
                  count(DISTINCT m.minute) AS minutes_watched,
                  coalesce(bool_or(m.mode = 'live'), false) AS watched_live
           FROM registrants r
           LEFT JOIN viewer_minutes m ON m.event_id = r.event_id AND m.viewer_id = r.viewer_id
           WHERE r.event_id = $1
           GROUP BY r.registration_id ORDER BY r.name, r.registration_id""",
        event_id,
    )
    return [RegistrantWatching(**dict(row)) for row in rows]
