"""Watch figures computed now from the watched minutes: views, watch time and unique viewers,
per region or role, and per registrant (read by the figures, the CSV and the finalisation)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from sto_analytics.domain import WatchFigures

# Per viewer of event $1: views live and replay (runs of consecutive clock minutes), live
# minutes, and replay minutes by the rule of ``domain.replay_minutes`` (distinct minutes of
# the recording, or clock minutes for a viewer whose beacons carried no position).
_PER_VIEWER = """
    WITH numbered AS (
        SELECT viewer_id, mode, minute,
               minute - row_number() OVER (PARTITION BY viewer_id, mode ORDER BY minute) AS run
        FROM viewer_minutes WHERE event_id = $1
    ), clock AS (
        SELECT viewer_id,
               count(DISTINCT run) FILTER (WHERE mode = 'live') AS views_live,
               count(DISTINCT run) FILTER (WHERE mode = 'replay') AS views_replay,
               count(*) FILTER (WHERE mode = 'live') AS minutes_live,
               count(*) FILTER (WHERE mode = 'replay') AS clock_replay
        FROM numbered GROUP BY viewer_id
    ), recording AS (
        SELECT viewer_id, count(*) AS minutes FROM recording_minutes
        WHERE event_id = $1 GROUP BY viewer_id
    ), per_viewer AS (
        SELECT c.viewer_id, c.views_live, c.views_replay, c.minutes_live,
               CASE WHEN r.minutes > 0 THEN r.minutes ELSE c.clock_replay END AS minutes_replay
        FROM clock c LEFT JOIN recording r USING (viewer_id)
    )
"""


async def watch_figures(conn: asyncpg.Connection, event_id: uuid.UUID) -> WatchFigures:
    """Views, watch minutes and unique viewers (see domain)."""
    row = await conn.fetchrow(
        _PER_VIEWER
        + """SELECT coalesce(sum(views_live), 0) AS views_live,
                    coalesce(sum(views_replay), 0) AS views_replay,
                    count(*) AS unique_viewers,
                    coalesce(sum(minutes_live), 0) AS watch_minutes_live,
                    coalesce(sum(minutes_replay), 0) AS watch_minutes_replay
             FROM per_viewer""",
        event_id,
    )
    return WatchFigures(**{key: int(value) for key, value in dict(row).items()})


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
        _PER_VIEWER
        + f"""SELECT coalesce({column}, 'onbekend') AS grp,
                     count(*) AS viewers,
                     sum(v.views_live + v.views_replay) AS views,
                     sum(v.minutes_live + v.minutes_replay) AS watch_minutes
              FROM per_viewer v
              LEFT JOIN registrants r ON r.event_id = $1 AND r.viewer_id = v.viewer_id
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
    minutes_live: int
    minutes_replay: int
    # Replay minutes watched within the replay window: what replay attendance counts.
    minutes_replay_in_window: int
    school_code: str | None = None
    certificate: bool = False

    @property
    def minutes_watched(self) -> int:
        return self.minutes_live + self.minutes_replay

    @property
    def watched_live(self) -> bool:
        return self.minutes_live > 0


async def registrant_watching(
    conn: asyncpg.Connection, event_id: uuid.UUID, replay_until: datetime
) -> list[RegistrantWatching]:
    """Every registrant of the event with the minutes their join link watched, live and
    replay (by ``domain.replay_minutes``; those watched until ``replay_until`` apart), and
    whether they hold a certificate."""
    rows = await conn.fetch(
        """WITH clock AS (
               SELECT viewer_id,
                      count(*) FILTER (WHERE mode = 'live') AS live,
                      count(*) FILTER (WHERE mode = 'replay') AS replay,
                      count(*) FILTER (WHERE mode = 'replay'
                                         AND minute * 60 <= extract(epoch FROM $2::timestamptz))
                          AS replay_in_window
               FROM viewer_minutes WHERE event_id = $1 GROUP BY viewer_id
           ), recording AS (
               SELECT viewer_id, count(*) AS replay,
                      count(*) FILTER (WHERE first_watched_at <= $2) AS replay_in_window
               FROM recording_minutes WHERE event_id = $1 GROUP BY viewer_id
           )
           SELECT r.registration_id, r.status, r.region_code, r.role, r.name, r.checked_in,
                  r.school_code,
                  coalesce(c.live, 0) AS minutes_live,
                  CASE WHEN g.replay > 0 THEN g.replay ELSE coalesce(c.replay, 0) END
                      AS minutes_replay,
                  CASE WHEN g.replay > 0 THEN g.replay_in_window
                       ELSE coalesce(c.replay_in_window, 0) END AS minutes_replay_in_window,
                  EXISTS (SELECT 1 FROM certificates x
                          WHERE x.registration_id = r.registration_id) AS certificate
           FROM registrants r
           LEFT JOIN clock c ON c.viewer_id = r.viewer_id
           LEFT JOIN recording g ON g.viewer_id = r.viewer_id
           WHERE r.event_id = $1
           ORDER BY r.name, r.registration_id""",
        event_id,
        replay_until,
    )
    return [RegistrantWatching(**dict(row)) for row in rows]
