"""Use cases of analytics: the only place that reaches the pool or opens a transaction.

``AnalyticsService`` is what the API reads: an event's figures and live count, its
attendance list, the series, the dashboard and a registrant's certificate. ``ReadModelWriter``
is what the Faust worker writes, one call per kind of batch (an event, an erasure, a flush of
registrations, a batch of beacons), and the finalisation of ended broadcasts; the agents keep
their batching and retry until a write is in, so a record is acked only after its effect.

Finalising an event writes its final figures and per-registrant attendance to the read model
and enqueues ``attendance.recorded`` (one per confirmed registrant who watched or was checked
in) then ``attendance.finalised`` in the outbox, all in one transaction that also marks the
event finalised: the messages go out exactly when the figures exist, and only once, whichever
worker gets there first (the row is locked with ``SKIP LOCKED``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from sto_analytics import repository
from sto_analytics.domain import BroadcastSummary as Summary
from sto_analytics.domain import (
    Funnel,
    RegistrationTally,
    SchoolTally,
    SeriesFigures,
    WatchFigures,
    attended,
    average_live_viewers,
    school_tallies,
    series_figures,
)
from stolive_shared import links
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.links import PersonalLinks
from stolive_shared.messaging.outbox import enqueue_many
from stolive_shared.privacy import keyring
from stolive_shared.privacy.sealing import Unreadable, open_sealed

log = logging.getLogger(__name__)

_MESSAGE_IDS = uuid.UUID("6f0c6a56-3f43-4f58-9a55-51f7a6f0a7e1")

# The worker's pool is made on first use, inside Faust's event loop: the writer asks for it.
PoolSource = Callable[[], Awaitable[asyncpg.Pool]]


@dataclass(frozen=True)
class EventReport:
    event: repository.TrackedEvent | None
    live: repository.LiveNow
    per_minute: list[tuple[int, int]]
    watch: WatchFigures
    average_live_viewers: float
    broadcast_minutes: float
    funnel: Funnel
    by_region: list[repository.GroupFigures]
    by_role: list[repository.GroupFigures]
    attended_by_region: dict[str, int]
    attended_by_role: dict[str, int]
    by_school: list[SchoolTally]
    min_minutes: float
    final: bool


@dataclass(frozen=True)
class RegistrantAttendance:
    """One line of an event's attendance list: the registrant and whether they attended."""

    registrant: repository.RegistrantWatching
    attended: bool


@dataclass(frozen=True)
class Overview:
    """The dashboard's index: recent events (live ones first) and the series with figures."""

    events: list[repository.TrackedEvent]
    series: list[str]


@dataclass(frozen=True)
class Dashboard:
    """An event's dashboard: its figures and, for an event of a series, the series'."""

    report: EventReport
    series: SeriesFigures | None


def funnel_of(registrants: list[repository.RegistrantWatching], min_minutes: float) -> Funnel:
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


@dataclass(frozen=True)
class Registrant:
    """A registrant as the worker's tables hold it: the contact still sealed."""

    registration_id: uuid.UUID
    event_id: uuid.UUID
    viewer_id: str
    status: str
    region_code: str | None
    role: str
    contact: Sealed | None
    checked_in: bool
    school_code: str | None = None
    check_in_undone: bool = False

    def row(self, name: str) -> repository.RegistrantRow:
        return repository.RegistrantRow(
            registration_id=self.registration_id,
            event_id=self.event_id,
            viewer_id=self.viewer_id,
            status=self.status,
            region_code=self.region_code,
            role=self.role,
            name=name,
            checked_in=self.checked_in,
            school_code=self.school_code,
            check_in_undone=self.check_in_undone,
        )


def _name(contact: Sealed | None, keys: dict[uuid.UUID, bytes]) -> str:
    key = keys.get(contact.subject) if contact is not None else None
    if contact is None or key is None:
        return ""
    try:
        return open_sealed(key, contact).name
    except Unreadable:
        return ""


class AnalyticsService:
    """The figures the API shows, each read on one connection from the read model."""

    def __init__(
        self, pool: asyncpg.Pool, personal_links: PersonalLinks, *, min_minutes: float
    ) -> None:
        self._pool = pool
        self._links = personal_links
        self._min_minutes = min_minutes

    async def registrations(self, event_id: uuid.UUID) -> RegistrationTally:
        async with self._pool.acquire() as conn:
            return await repository.registration_tally(conn, event_id)

    async def event_report(self, event_id: uuid.UUID) -> EventReport:
        async with self._pool.acquire() as conn:
            return await _event_report(conn, event_id, self._min_minutes)

    async def live_now(self, event_id: uuid.UUID) -> repository.LiveNow:
        async with self._pool.acquire() as conn:
            return await repository.live_now(conn, event_id)

    async def attendance(self, event_id: uuid.UUID) -> list[RegistrantAttendance]:
        """Every registrant with the minutes they watched; only confirmed ones can attend."""
        async with self._pool.acquire() as conn:
            registrants = await repository.registrant_watching(conn, event_id)
        return [
            RegistrantAttendance(
                registrant=r,
                attended=r.status == "confirmed"
                and attended(r.minutes_watched, r.checked_in, self._min_minutes),
            )
            for r in registrants
        ]

    async def series_codes(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return await repository.series_codes(conn)

    async def series_report(self, series_code: str) -> SeriesFigures:
        async with self._pool.acquire() as conn:
            return await _series_report(conn, series_code)

    async def overview(
        self, only: frozenset[uuid.UUID] | None = None, *, with_series: bool = True
    ) -> Overview:
        """The index of an organiser who may see ``only`` these events (None: every one),
        with the series when their figures are theirs to see (they span every region)."""
        async with self._pool.acquire() as conn:
            return Overview(
                events=await repository.recent_events(conn, only=only),
                series=await repository.series_codes(conn) if with_series else [],
            )

    async def dashboard(self, event_id: uuid.UUID, *, with_series: bool = True) -> Dashboard:
        async with self._pool.acquire() as conn:
            report = await _event_report(conn, event_id, self._min_minutes)
            series = (
                await _series_report(conn, report.event.series_code)
                if with_series and report.event and report.event.series_code
                else None
            )
        return Dashboard(report=report, series=series)

    async def about_person(self, registration_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        """For a person's export: what analytics holds about each of their registrations,
        with the link to each certificate still kept."""
        async with self._pool.acquire() as conn:
            found = await repository.person_data(conn, registration_ids)
        for entry in found:
            if entry["certificate_issued_at"] is not None:
                entry["certificate_url"] = self._links.certificate(entry["registration_id"])
        return found

    async def certificate(self, token: str) -> repository.Certificate | None:
        """The certificate a personal link shows: only for a valid link of a registrant who
        attended a finalised event, while the certificate is kept."""
        registration_id = self._links.subject(links.CERTIFICATE, token)
        if registration_id is None:
            return None
        async with self._pool.acquire() as conn:
            return await repository.certificate(conn, registration_id)


class ReadModelWriter:
    """What the worker's agents and timers write. Each call is one attempt on one connection
    (one transaction where several statements must land together); the agents decide whether
    to retry."""

    def __init__(
        self, pool: PoolSource, *, schema: str, grace_s: float, min_minutes: float
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._grace_s = grace_s
        self._min_minutes = min_minutes

    async def record_event(
        self,
        snapshot: EventSnapshot,
        *,
        went_live_at: datetime | None,
        ended_at: datetime | None,
    ) -> None:
        pool = await self._pool()
        async with pool.acquire() as conn:
            await repository.save_event(
                conn, snapshot.model_dump(), went_live_at=went_live_at, ended_at=ended_at
            )

    async def erase_names(self, registration_ids: Sequence[uuid.UUID]) -> None:
        """A person was erased: their name and certificates go, the counts stay."""
        pool = await self._pool()
        async with pool.acquire() as conn, conn.transaction():
            await repository.erase_names(conn, registration_ids)
            await repository.withdraw_certificates(conn, registration_ids)

    async def anonymise_names(self, registration_ids: Sequence[uuid.UUID]) -> None:
        """Registrations past their retention period: their names go; an issued certificate
        keeps its own until ``expire_certificates``."""
        pool = await self._pool()
        async with pool.acquire() as conn:
            await repository.anonymise_names(conn, registration_ids)

    async def expire_certificates(self, issued_before: datetime, limit: int) -> int:
        """One batch of certificates past their retention (``certificate_retention_days``)."""
        pool = await self._pool()
        async with pool.acquire() as conn, conn.transaction():
            return await repository.expire_certificates(conn, issued_before, limit)

    async def save_registrations(
        self,
        tallies: dict[uuid.UUID, RegistrationTally],
        registrants: Sequence[Registrant],
    ) -> None:
        """The tallies and registrants of a flush, in one transaction; the registrants'
        names opened from their sealed contacts (no longer readable after an erasure)."""
        pool = await self._pool()
        async with pool.acquire() as conn, conn.transaction():
            keys = await keyring.keys_of(
                conn, [r.contact.subject for r in registrants if r.contact is not None]
            )
            await repository.save_registration_tallies(conn, tallies)
            await repository.save_registrants(
                conn, [r.row(_name(r.contact, keys)) for r in registrants]
            )

    async def save_viewing(
        self,
        minutes: Sequence[tuple[uuid.UUID, str, str, int]],
        live: Sequence[repository.LiveRow],
        minute_maxima: Sequence[tuple[uuid.UUID, int, int]],
    ) -> None:
        """A batch of beacons: new watched minutes, live counts and per-minute maxima."""
        pool = await self._pool()
        # One transaction: one commit (one WAL flush) per batch, not three.
        async with pool.acquire() as conn, conn.transaction():
            await repository.add_viewer_minutes(conn, minutes)
            await repository.save_live_counts(conn, live)
            await repository.raise_live_minutes(conn, minute_maxima)

    async def finalise_due_events(self) -> list[uuid.UUID]:
        """Finalise every ended event past its grace period; return the ones this call did."""
        pool = await self._pool()
        done: list[uuid.UUID] = []
        while True:
            async with pool.acquire() as conn, conn.transaction():
                event = await repository.claim_event_to_finalise(conn, self._grace_s)
                if event is None:
                    return done
                await _finalise(conn, event, schema=self._schema, min_minutes=self._min_minutes)
            done.append(event.event_id)
            log.info("event finalised", extra={"ctx_event_id": str(event.event_id)})


async def _event_report(
    conn: asyncpg.Connection, event_id: uuid.UUID, min_minutes: float
) -> EventReport:
    """Figures of one event, computed now from the read model (live or ended alike)."""
    event = await repository.tracked_event(conn, event_id)
    watch = await repository.watch_figures(conn, event_id)
    registrants = await repository.registrant_watching(conn, event_id)
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
        live=await repository.live_now(conn, event_id),
        per_minute=await repository.live_minutes(conn, event_id),
        watch=watch,
        average_live_viewers=average_live_viewers(watch.watch_minutes_live, minutes),
        broadcast_minutes=minutes,
        funnel=funnel,
        by_region=await repository.watching_by(conn, event_id, "region_code"),
        by_role=await repository.watching_by(conn, event_id, "role"),
        attended_by_region=attended_by_region,
        attended_by_role=attended_by_role,
        by_school=school_tallies(
            (
                r.school_code,
                r.status == "confirmed",
                attended(r.minutes_watched, r.checked_in, min_minutes),
            )
            for r in registrants
        ),
        min_minutes=min_minutes,
        final=event is not None and event.finalised_at is not None,
    )


async def _series_report(conn: asyncpg.Connection, series_code: str) -> SeriesFigures:
    """The series' totals from the final figures of its ended broadcasts."""
    broadcasts = await repository.series_broadcasts(conn, series_code)
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


async def _finalise(
    conn: asyncpg.Connection, event: repository.TrackedEvent, *, schema: str, min_minutes: float
) -> None:
    report = await _event_report(conn, event.event_id, min_minutes)
    registrants = await repository.registrant_watching(conn, event.event_id)
    seen = [
        r
        for r in registrants
        if r.status == "confirmed" and (r.minutes_watched > 0 or r.checked_in)
    ]
    rows = [
        repository.AttendanceRow(
            registration_id=r.registration_id,
            event_id=event.event_id,
            minutes_watched=r.minutes_watched,
            watched_live=r.watched_live,
            checked_in=r.checked_in,
            attended=attended(r.minutes_watched, r.checked_in, min_minutes),
        )
        for r in seen
    ]
    await repository.save_attendance(conn, rows)
    await repository.issue_certificates(conn, event.event_id)
    watch, funnel = report.watch, report.funnel
    await repository.save_broadcast_figures(
        conn,
        repository.BroadcastFigures(
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
    await repository.mark_finalised(conn, event.event_id)
