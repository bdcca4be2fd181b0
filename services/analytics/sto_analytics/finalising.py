"""What an ended event's finalisation, and every later refresh of it, write on the caller's
transaction (``service.ReadModelWriter`` opens it, with the event's row locked SKIP LOCKED).

Finalising writes the event's figures and per-registrant attendance, issues the certificates,
and enqueues one ``attendance.recorded`` per confirmed registrant who watched or was checked
in, then ``attendance.finalised``: the messages go out exactly when the figures exist, and only
once.

A refresh runs when viewing of a finalised event arrives (``tracked_events.figures_stale``):
it writes the figures again (replay views and minutes keep counting), and each confirmed
registrant who reached replay attendance since (within the replay window) gets their
attendance, their certificate and ONE ``attendance.recorded`` with ``attended_as="replay"``,
its id derived from the registration (``recorded-replay:<id>``), so it happens exactly once
whichever worker gets there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from sto_analytics import repository
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.base import Message
from stolive_shared.messaging.outbox import enqueue_many

if TYPE_CHECKING:
    from sto_analytics.service import EventReport, RegistrantAttendance

MESSAGE_IDS = uuid.UUID("6f0c6a56-3f43-4f58-9a55-51f7a6f0a7e1")


def recorded_message_id(registration_id: uuid.UUID, *, late: bool) -> uuid.UUID:
    """The same id for the same registrant's message however often it is made."""
    kind = "recorded-replay" if late else "recorded"
    return uuid.uuid5(MESSAGE_IDS, f"{kind}:{registration_id}")


def figures_row(report: EventReport) -> repository.BroadcastFigures:
    event = report.event
    assert event is not None
    watch, funnel = report.watch, report.funnel
    return repository.BroadcastFigures(
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
        min_minutes=report.min_minutes,
        attended_live=funnel.attended_live,
        attended_replay=funnel.attended_replay,
        replay_attendance_days=report.replay_attendance_days,
    )


def _recorded(
    row: repository.AttendanceRow, *, certificate: bool, late: bool, now: datetime
) -> AttendanceRecorded:
    return AttendanceRecorded(
        message_id=recorded_message_id(row.registration_id, late=late),
        occurred_at=now,
        event_id=row.event_id,
        registration_id=row.registration_id,
        minutes_watched=float(row.minutes_watched),
        watched_live=row.minutes_live > 0,
        checked_in=row.checked_in,
        attended=row.attended,
        minutes_live=float(row.minutes_live),
        minutes_replay=float(row.minutes_replay),
        attended_as=row.attended_as,
        certificate=certificate,
    )


def _rows(
    report: EventReport, lines: Sequence[RegistrantAttendance]
) -> list[repository.AttendanceRow]:
    assert report.event is not None
    return [
        repository.AttendanceRow(
            registration_id=line.registrant.registration_id,
            event_id=report.event.event_id,
            minutes_live=line.registrant.minutes_live,
            minutes_replay=line.registrant.minutes_replay,
            checked_in=line.registrant.checked_in,
            attended_as=line.attended_as,
        )
        for line in lines
    ]


async def finalise(
    conn: asyncpg.Connection,
    report: EventReport,
    *,
    schema: str,
    now: datetime,
    codes: Callable[[], str],
) -> None:
    event = report.event
    assert event is not None
    seen = [
        line
        for line in report.registrants
        if line.registrant.status == "confirmed"
        and (line.registrant.minutes_watched > 0 or line.registrant.checked_in)
    ]
    rows = _rows(report, seen)
    await repository.save_attendance(conn, rows)
    holders = await repository.issue_certificates(conn, event.event_id, codes)
    await repository.save_broadcast_figures(conn, figures_row(report))
    messages: list[Message] = [
        _recorded(row, certificate=row.registration_id in holders, late=False, now=now)
        for row in rows
    ]
    messages.append(
        AttendanceFinalised(
            message_id=uuid.uuid5(MESSAGE_IDS, f"finalised:{event.event_id}"),
            occurred_at=now,
            event_id=event.event_id,
            ended_at=event.ended_at or event.ends_at,
            registrants=report.funnel.confirmed,
            attended=report.funnel.attended,
            min_minutes_for_attendance=report.min_minutes,
        )
    )
    await enqueue_many(conn, messages, schema=schema)
    await repository.mark_finalised(conn, event.event_id)


async def refresh(
    conn: asyncpg.Connection,
    report: EventReport,
    *,
    schema: str,
    now: datetime,
    codes: Callable[[], str],
) -> int:
    """Bring a finalised event up to date; return how many late replay attendees it found."""
    event = report.event
    assert event is not None
    await repository.save_broadcast_figures(conn, figures_row(report))
    already = await repository.attendees(conn, event.event_id)
    late = [
        line
        for line in report.registrants
        if line.attended_as == "replay"
        and line.registrant.status == "confirmed"
        and line.registrant.registration_id not in already
    ]
    if late:
        rows = _rows(report, late)
        await repository.record_replay_attendance(conn, rows)
        holders = await repository.issue_certificates(conn, event.event_id, codes)
        await enqueue_many(
            conn,
            [
                _recorded(row, certificate=row.registration_id in holders, late=True, now=now)
                for row in rows
            ],
            schema=schema,
        )
    await repository.mark_refreshed(conn, event.event_id)
    return len(late)
