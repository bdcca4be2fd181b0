"""Use cases of the analytics read side: an event's figures, a series' figures, and the
finalisation of an ended broadcast (the only place that opens a transaction).

Finalising an event writes its final figures and per-registrant attendance to the read model
and enqueues ``attendance.recorded`` (one per confirmed registrant who watched or was checked
in) then ``attendance.finalised`` in the outbox, all in one transaction that also marks the
event finalised: the messages go out exactly when the figures exist, and only once, whichever
worker gets there first (the row is locked with ``SKIP LOCKED``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from sto_analytics import read_model as rm
from sto_analytics.domain import BroadcastSummary as Summary
from sto_analytics.domain import (
    Funnel,
    SeriesFigures,
    WatchFigures,
    attended,
    average_live_viewers,
    series_figures,
)
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.messaging.outbox import enqueue_many

log = logging.getLogger(__name__)

_MESSAGE_IDS = uuid.UUID("6f0c6a56-3f43-4f58-9a55-51f7a6f0a7e1")


@dataclass(frozen=True)
class EventReport:
    event: rm.TrackedEvent | None
    live: rm.LiveNow
    per_minute: list[tuple[int, int]]
    watch: WatchFigures
    average_live_viewers: float
    broadcast_minutes: float
    funnel: Funnel
    by_region: list[rm.GroupFigures]
    by_role: list[rm.GroupFigures]
    attended_by_region: dict[str, int]
    attended_by_role: dict[str, int]
    min_minutes: float
    final: bool


def funnel_of(registrants: list[rm.RegistrantWatching], min_minutes: float) -> Funnel:
    confirmed = [r for r in registrants if r.status == "confirmed"]
    return Funnel(
        registered=len(registrants),
        confirmed=len(confirmed),
        waitlisted=sum(1 for r in registrants if r.status == "waitlisted"),
        cancelled=sum(1 for r in registrants if r.status == "cancelled"),
        watched=sum(1 for r in confirmed if r.minutes_watched > 0),
        attended=sum(
            1 for r in confirmed if attended(r.minutes_watched, r.checked_in, min_minutes)
        ),
    )


async def event_report(
    conn: asyncpg.Connection, event_id: uuid.UUID, min_minutes: float
) -> EventReport:
    """Figures of one event, computed now from the read model (live or ended alike)."""
    event = await rm.tracked_event(conn, event_id)
    watch = await rm.watch_figures(conn, event_id)
    registrants = await rm.registrant_watching(conn, event_id)
    funnel = funnel_of(registrants, min_minutes)
    attended_by_region: dict[str, int] = {}
    attended_by_role: dict[str, int] = {}
    for r in registrants:
        if r.status == "confirmed" and attended(r.minutes_watched, r.checked_in, min_minutes):
            region = r.region_code or "onbekend"
            attended_by_region[region] = attended_by_region.get(region, 0) + 1
            attended_by_role[r.role] = attended_by_role.get(r.role, 0) + 1
    minutes = event.broadcast_minutes if event else 0.0
    return EventReport(
        event=event,
        live=await rm.live_now(conn, event_id),
        per_minute=await rm.live_minutes(conn, event_id),
        watch=watch,
        average_live_viewers=average_live_viewers(watch.watch_minutes_live, minutes),
        broadcast_minutes=minutes,
        funnel=funnel,
        by_region=await rm.watching_by(conn, event_id, "region_code"),
        by_role=await rm.watching_by(conn, event_id, "role"),
        attended_by_region=attended_by_region,
        attended_by_role=attended_by_role,
        min_minutes=min_minutes,
        final=event is not None and event.finalised_at is not None,
    )


async def series_report(conn: asyncpg.Connection, series_code: str) -> SeriesFigures:
    """The series' totals from the final figures of its ended broadcasts."""
    broadcasts = await rm.series_broadcasts(conn, series_code)
    return series_figures(
        series_code,
        [
            Summary(
                event_id=str(b.event_id),
                title=b.title,
                series_number=b.series_number,
                starts_at=b.starts_at,
                views=b.views_live + b.views_replay,
                average_live_viewers=b.average_live_viewers,
            )
            for b in broadcasts
        ],
    )


async def finalise_due_events(
    pool: asyncpg.Pool, *, schema: str, grace_s: float, min_minutes: float
) -> list[uuid.UUID]:
    """Finalise every ended event past its grace period; return the ones this call did."""
    done: list[uuid.UUID] = []
    while True:
        async with pool.acquire() as conn, conn.transaction():
            event = await rm.claim_event_to_finalise(conn, grace_s)
            if event is None:
                return done
            await _finalise(conn, event, schema=schema, min_minutes=min_minutes)
        done.append(event.event_id)
        log.info("event finalised", extra={"ctx_event_id": str(event.event_id)})


async def _finalise(
    conn: asyncpg.Connection, event: rm.TrackedEvent, *, schema: str, min_minutes: float
) -> None:
    report = await event_report(conn, event.event_id, min_minutes)
    registrants = await rm.registrant_watching(conn, event.event_id)
    seen = [
        r
        for r in registrants
        if r.status == "confirmed" and (r.minutes_watched > 0 or r.checked_in)
    ]
    rows = [
        rm.AttendanceRow(
            registration_id=r.registration_id,
            event_id=event.event_id,
            minutes_watched=r.minutes_watched,
            watched_live=r.watched_live,
            checked_in=r.checked_in,
            attended=attended(r.minutes_watched, r.checked_in, min_minutes),
        )
        for r in seen
    ]
    await rm.save_attendance(conn, rows)
    watch, funnel = report.watch, report.funnel
    await rm.save_broadcast_figures(
        conn,
        rm.BroadcastFigures(
            event_id=event.event_id,
            title=event.title,
            series_code=event.series_code,
            series_number=event.series_number,
            starts_at=event.went_live_at or event.starts_at,
            broadcast_minutes=report.broadcast_minutes,
            views_live=watch.views_live,
            views_replay=watch.views_replay,
            unique_viewers=watch.unique_viewers,
            watch_minutes_live=watch.watch_minutes_live,
            watch_minutes_replay=watch.watch_minutes_replay,
            average_live_viewers=report.average_live_viewers,
            peak_live_viewers=report.live.peak,
            peak_at=report.live.peak_at,
            registered=funnel.registered,
            confirmed=funnel.confirmed,
            waitlisted=funnel.waitlisted,
            cancelled=funnel.cancelled,
            watched=funnel.watched,
            attended=funnel.attended,
            min_minutes=min_minutes,
        ),
    )
    now = datetime.now(UTC)
    messages: list[AttendanceRecorded | AttendanceFinalised] = [
        AttendanceRecorded(
            message_id=uuid.uuid5(_MESSAGE_IDS, f"recorded:{row.registration_id}"),
            occurred_at=now,
            event_id=event.event_id,
            registration_id=row.registration_id,
            minutes_watched=float(row.minutes_watched),
            watched_live=row.watched_live,
            checked_in=row.checked_in,
            attended=row.attended,
        )
        for row in rows
    ]
    messages.append(
        AttendanceFinalised(
            message_id=uuid.uuid5(_MESSAGE_IDS, f"finalised:{event.event_id}"),
            occurred_at=now,
            event_id=event.event_id,
            ended_at=event.ended_at or event.ends_at,
            registrants=funnel.confirmed,
            attended=funnel.attended,
            min_minutes_for_attendance=min_minutes,
        )
    )
    await enqueue_many(conn, list(messages), schema=schema)
    await rm.mark_finalised(conn, event.event_id)
