"""Use cases of analytics: the only place that reaches the pool or opens a transaction.

``AnalyticsService`` is what the API reads: an event's figures and live count, its
attendance list, the series, the dashboard and a registrant's certificate. ``ReadModelWriter``
is what the Faust worker writes, one call per kind of batch (an event, an erasure, a flush of
registrations, a batch of beacons), and the finalisation of ended broadcasts; the agents keep
their batching and retry until a write is in, so a record is acked only after its effect.

Finalising an event, and refreshing a finalised one when viewing comes later, each run in
one transaction with the event's row locked (``SKIP LOCKED``: whichever worker gets there
first does it, once); what they write is ``finalising``'s. Which figure is final when is
stated in ``domain``.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from sto_analytics import certificates, finalising, repository
from sto_analytics.domain import (
    AttendedAs,
    Funnel,
    RegistrationTally,
    SchoolTally,
    SeriesFigures,
    WatchFigures,
    attendance_kind,
    average_live_viewers,
    replay_window_end,
    school_tallies,
    series_figures,
)
from sto_analytics.domain import BroadcastSummary as Summary
from stolive_shared import links
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.links import PersonalLinks
from stolive_shared.privacy import keyring
from stolive_shared.privacy.sealing import Unreadable, open_sealed

log = logging.getLogger(__name__)

# The worker's pool is made on first use, inside Faust's event loop: the writer asks for it.
PoolSource = Callable[[], Awaitable[asyncpg.Pool]]
_NEVER = datetime.max.replace(tzinfo=UTC)


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
    registrants: list[RegistrantAttendance]
    replay_attendance_days: float
    # Replay watched until then counts toward replay attendance: when it is final.
    replay_window_ends_at: datetime | None
    computed_at: datetime

    @property
    def finalised_at(self) -> datetime | None:
        return self.event.finalised_at if self.event else None


@dataclass(frozen=True)
class RegistrantAttendance:
    """One line of an event's attendance list: the registrant and how they attended."""

    registrant: repository.RegistrantWatching
    attended_as: AttendedAs | None

    @property
    def attended(self) -> bool:
        return self.attended_as is not None


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


def attendance_of(
    registrants: list[repository.RegistrantWatching], min_minutes: float
) -> list[RegistrantAttendance]:
    """Every registrant with how they attended; only confirmed ones can attend."""
    return [
        RegistrantAttendance(
            registrant=r,
            attended_as=attendance_kind(
                r.minutes_live, r.minutes_replay_in_window, r.checked_in, min_minutes
            )
            if r.status == "confirmed"
            else None,
        )
        for r in registrants
    ]


def funnel_of(lines: list[RegistrantAttendance]) -> Funnel:
    registrants = [line.registrant for line in lines]
    confirmed = [line for line in lines if line.registrant.status == "confirmed"]
    live = sum(1 for line in confirmed if line.attended_as == "live")
    replay = sum(1 for line in confirmed if line.attended_as == "replay")
    return Funnel(
        registered=len(registrants),
        confirmed=len(confirmed),
        waitlisted=sum(1 for r in registrants if r.status == "waitlisted"),
        cancelled=sum(1 for r in registrants if r.status == "cancelled"),
        watched=sum(1 for line in confirmed if line.registrant.minutes_watched > 0),
        attended=live + replay,
        attended_live=live,
        attended_replay=replay,
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
        self,
        pool: asyncpg.Pool,
        personal_links: PersonalLinks,
        *,
        min_minutes: float,
        replay_days: float = 30.0,
    ) -> None:
        self._pool = pool
        self._links = personal_links
        self._min_minutes = min_minutes
        self._replay_days = replay_days

    async def registrations(self, event_id: uuid.UUID) -> RegistrationTally:
        async with self._pool.acquire() as conn:
            return await repository.registration_tally(conn, event_id)

    async def event_report(self, event_id: uuid.UUID) -> EventReport:
        async with self._pool.acquire() as conn:
            return await _event_report(conn, event_id, self._min_minutes, self._replay_days)

    async def live_now(self, event_id: uuid.UUID) -> repository.LiveNow:
        async with self._pool.acquire() as conn:
            return await repository.live_now(conn, event_id)

    async def attendance(self, event_id: uuid.UUID) -> EventReport:
        """Every registrant with the minutes they watched, how they attended and whether they
        hold a certificate (``registrants`` of the event's report)."""
        return await self.event_report(event_id)

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
            report = await _event_report(conn, event_id, self._min_minutes, self._replay_days)
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

    async def verify(self, typed: str) -> repository.Certificate | None:
        """The certificate a verification code belongs to. Every answer takes one lookup,
        a malformed code too, so the time of an answer tells nothing."""
        code = certificates.normalised(typed) or "-" * certificates.LENGTH
        async with self._pool.acquire() as conn:
            return await repository.certificate_by_code(conn, code)


class ReadModelWriter:
    """What the worker's agents and timers write. Each call is one attempt on one connection
    (one transaction where several statements must land together); the agents decide whether
    to retry."""

    def __init__(
        self,
        pool: PoolSource,
        *,
        schema: str,
        grace_s: float,
        min_minutes: float,
        replay_days: float = 30.0,
        clock: Clock = utc_now,
        codes: Callable[[], str] = certificates.new_code,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._grace_s = grace_s
        self._min_minutes = min_minutes
        self._replay_days = replay_days
        self._clock = clock
        self._codes = codes

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
        recording: Sequence[tuple[uuid.UUID, str, int, datetime]] = (),
    ) -> None:
        """A batch of beacons: new watched minutes (of the clock and of the recording), live
        counts and per-minute maxima; finalised events among them are marked for a refresh."""
        pool = await self._pool()
        # One transaction: one commit (one WAL flush) per batch, not four.
        async with pool.acquire() as conn, conn.transaction():
            await repository.add_viewer_minutes(conn, minutes)
            await repository.add_recording_minutes(conn, recording)
            await repository.save_live_counts(conn, live)
            await repository.raise_live_minutes(conn, minute_maxima)
            # Last: the event rows stay locked for the shortest time.
            await repository.mark_figures_stale(
                conn, [m[0] for m in minutes] + [r[0] for r in recording]
            )

    async def finalise_due_events(self) -> list[uuid.UUID]:
        """Finalise every ended event past its grace period; return the ones this call did."""

        async def claim(conn: asyncpg.Connection) -> repository.TrackedEvent | None:
            return await repository.claim_event_to_finalise(conn, self._grace_s)

        async def finalise(conn: asyncpg.Connection, report: EventReport) -> int:
            await finalising.finalise(
                conn, report, schema=self._schema, now=self._clock(), codes=self._codes
            )
            return 0

        done = await self._each_claimed(claim, finalise)
        for event_id, _ in done:
            log.info("event finalised", extra={"ctx_event_id": str(event_id)})
        return [event_id for event_id, _ in done]

    async def refresh_finalised_events(self) -> list[uuid.UUID]:
        """Bring the figures of every finalised event that saw viewing since up to date, with
        its late replay attendees; return the events this call did. Cheap when nothing came:
        one indexed query."""

        async def refresh(conn: asyncpg.Connection, report: EventReport) -> int:
            return await finalising.refresh(
                conn, report, schema=self._schema, now=self._clock(), codes=self._codes
            )

        done = await self._each_claimed(repository.claim_event_to_refresh, refresh)
        for event_id, late in done:
            if late:
                log.info(
                    "late replay attendance recorded",
                    extra={"ctx_event_id": str(event_id), "ctx_attendees": late},
                )
        return [event_id for event_id, _ in done]

    async def _each_claimed(
        self,
        claim: Callable[[asyncpg.Connection], Awaitable[repository.TrackedEvent | None]],
        write: Callable[[asyncpg.Connection, EventReport], Awaitable[int]],
    ) -> list[tuple[uuid.UUID, int]]:
        """Claim one event at a time (SKIP LOCKED: two workers never take the same) and write
        its figures in that transaction, until none is left; each with what ``write`` counted."""
        pool = await self._pool()
        done: list[tuple[uuid.UUID, int]] = []
        while True:
            async with pool.acquire() as conn, conn.transaction():
                event = await claim(conn)
                if event is None:
                    return done
                counted = await write(conn, await self._report(conn, event.event_id))
            done.append((event.event_id, counted))

    async def _report(self, conn: asyncpg.Connection, event_id: uuid.UUID) -> EventReport:
        return await _event_report(
            conn, event_id, self._min_minutes, self._replay_days, now=self._clock()
        )


async def _event_report(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    min_minutes: float,
    replay_days: float,
    *,
    now: datetime | None = None,
) -> EventReport:
    """Figures of one event, computed now from the read model (live or ended alike)."""
    event = await repository.tracked_event(conn, event_id)
    watch = await repository.watch_figures(conn, event_id)
    window_end = replay_window_end(event.ended_at or event.ends_at, replay_days) if event else None
    lines = attendance_of(
        await repository.registrant_watching(
            conn, event_id, window_end or datetime.max.replace(tzinfo=UTC)
        ),
        min_minutes,
    )
    attended_by_region: dict[str, int] = {}
    attended_by_role: dict[str, int] = {}
    for line in lines:
        if line.attended:
            r = line.registrant
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
        funnel=funnel_of(lines),
        by_region=await repository.watching_by(conn, event_id, "region_code"),
        by_role=await repository.watching_by(conn, event_id, "role"),
        attended_by_region=attended_by_region,
        attended_by_role=attended_by_role,
        by_school=school_tallies(
            (line.registrant.school_code, line.registrant.status == "confirmed", line.attended)
            for line in lines
        ),
        min_minutes=min_minutes,
        final=event is not None and event.finalised_at is not None,
        registrants=lines,
        replay_attendance_days=replay_days,
        replay_window_ends_at=window_end,
        computed_at=now or utc_now(),
    )


async def _series_report(conn: asyncpg.Connection, series_code: str) -> SeriesFigures:
    """The series' totals from the figures of its ended broadcasts (brought up to date when
    viewing comes later), with the moment the newest of them was computed."""
    broadcasts = await repository.series_broadcasts(conn, series_code)
    figures = series_figures(
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
    updated = [b.computed_at for b in broadcasts if b.computed_at is not None]
    return dataclasses.replace(figures, updated_at=max(updated) if updated else None)
