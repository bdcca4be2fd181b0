"""The events repository on PostgreSQL: SQL with ``$n`` parameters, returning domain objects.

Bound to one connection (inside the store's transaction) and to the service's schema, which
names the outbox's wake-up channel. It opens no transactions.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from sto_events.domain import DuplicateSeriesNumber, Event, Region, Series
from sto_events.repository.port import EventFilter, EventsRepository
from sto_events.schools import School
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventStatus
from stolive_shared.messaging import outbox
from stolive_shared.organisers.audit import AuditLog, EventScope
from stolive_shared.organisers.roles import Organiser
from stolive_shared.store import PostgresStore

_EVENT_COLUMNS = """
e.id, e.kind, e.status, e.revision, e.title, e.description, e.starts_at, e.ends_at, e.venue,
e.stream_url, e.replay_url, e.captions_url, e.series_code, e.series_number, e.capacity,
e.waitlist_enabled, e.registration_opens_at, e.registration_closes_at, e.reminder_offsets_hours,
COALESCE((SELECT array_agg(r.region_code ORDER BY r.region_code) FROM event_regions r
          WHERE r.event_id = e.id), '{}') AS region_codes
"""
# The unique index on (series_code, series_number): a broadcast number is used once a series.
_SERIES_NUMBER_INDEX = "events_series_number"


def postgres_store(pool: asyncpg.Pool, schema: str) -> PostgresStore[EventsRepository]:
    """The events' real store: each transaction's repository works on its connection."""
    audit = AuditLog(pool, "events")
    return PostgresStore(pool, lambda conn: PostgresEventsRepository(conn, schema, audit))


def _event(row: asyncpg.Record) -> Event:
    return Event(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        revision=row["revision"],
        title=row["title"],
        description=row["description"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        venue=row["venue"],
        stream_url=row["stream_url"],
        replay_url=row["replay_url"],
        captions_url=row["captions_url"],
        series_code=row["series_code"],
        series_number=row["series_number"],
        capacity=row["capacity"],
        waitlist_enabled=row["waitlist_enabled"],
        registration_opens_at=row["registration_opens_at"],
        registration_closes_at=row["registration_closes_at"],
        reminder_offsets_hours=tuple(row["reminder_offsets_hours"]),
        region_codes=tuple(row["region_codes"]),
    )


def _changeable(event: Event) -> tuple[Any, ...]:
    """The id, then the columns an update may change: ``$1`` to ``$16`` of both statements."""
    return (
        event.id,
        event.status,
        event.revision,
        event.title,
        event.description,
        event.starts_at,
        event.ends_at,
        event.venue,
        event.stream_url,
        event.replay_url,
        event.capacity,
        event.waitlist_enabled,
        event.registration_opens_at,
        event.registration_closes_at,
        list(event.reminder_offsets_hours),
        event.captions_url,
    )


class PostgresEventsRepository(EventsRepository):
    def __init__(
        self, conn: asyncpg.Connection, schema: str, audit: AuditLog | None = None
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.audit = audit

    async def get_event(self, event_id: uuid.UUID, *, for_update: bool = False) -> Event | None:
        lock = " FOR UPDATE OF e" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.id = $1{lock}", event_id
        )
        return _event(row) if row else None

    async def list_events(self, where: EventFilter) -> list[Event]:
        clauses, args = ["true"], []  # type: list[str], list[Any]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if where.public_only:
            clauses.append("e.status IN ('published', 'live', 'ended')")
        if where.kind:
            clauses.append(f"e.kind = {arg(where.kind)}")
        if where.status:
            clauses.append(f"e.status = {arg(where.status)}")
        if where.region_code:
            # National webinars and the national day belong on every region's agenda.
            region = arg(where.region_code)
            clauses.append(
                "(EXISTS (SELECT 1 FROM event_regions r"
                f" WHERE r.event_id = e.id AND r.region_code = {region})"
                " OR e.kind IN ('webinar', 'national_day'))"
            )
        if where.within_regions is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM event_regions r WHERE r.event_id = e.id"
                f" AND r.region_code = ANY({arg(sorted(where.within_regions))}::text[]))"
            )
        if where.starts_from:
            clauses.append(f"e.starts_at >= {arg(where.starts_from)}")
        if where.starts_before:
            clauses.append(f"e.starts_at < {arg(where.starts_before)}")
        if where.ends_after:
            clauses.append(f"e.ends_at > {arg(where.ends_after)}")
        if where.series_code:
            clauses.append(f"e.series_code = {arg(where.series_code)}")
        if where.with_replay:
            clauses.append("e.replay_url IS NOT NULL")
        order = "e.starts_at DESC, e.id DESC" if where.newest_first else "e.starts_at, e.id"
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events e WHERE {' AND '.join(clauses)}"
            f" ORDER BY {order} LIMIT {arg(where.limit)}"
        )
        return [_event(row) for row in await self.conn.fetch(sql, *args)]

    async def insert_event(self, event: Event) -> None:
        try:
            await self.conn.execute(
                """INSERT INTO events (id, status, revision, title, description, starts_at,
                       ends_at, venue, stream_url, replay_url, capacity, waitlist_enabled,
                       registration_opens_at, registration_closes_at, reminder_offsets_hours,
                       captions_url, kind, series_code, series_number)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)""",
                *_changeable(event),
                event.kind,
                event.series_code,
                event.series_number,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != _SERIES_NUMBER_INDEX:
                raise
            raise DuplicateSeriesNumber.taken(event.series_number) from exc
        await self._save_regions(event)

    async def update_event(self, event: Event) -> None:
        await self.conn.execute(
            """UPDATE events SET status=$2, revision=$3, title=$4, description=$5, starts_at=$6,
                   ends_at=$7, venue=$8, stream_url=$9, replay_url=$10, capacity=$11,
                   waitlist_enabled=$12, registration_opens_at=$13, registration_closes_at=$14,
                   reminder_offsets_hours=$15, captions_url=$16, updated_at=now()
               WHERE id=$1""",
            *_changeable(event),
        )
        await self.conn.execute("DELETE FROM event_regions WHERE event_id = $1", event.id)
        await self._save_regions(event)

    async def _save_regions(self, event: Event) -> None:
        # Every service checks a regional leader's scope against this copy (same transaction).
        await EventScope.write(self.conn, event.id, event.region_codes)
        if event.region_codes:
            await self.conn.executemany(
                "INSERT INTO event_regions (event_id, region_code) VALUES ($1, $2)",
                [(event.id, code) for code in event.region_codes],
            )

    async def unknown_region_codes(self, codes: tuple[str, ...]) -> list[str]:
        rows = await self.conn.fetch("SELECT code FROM regions WHERE code = ANY($1)", list(codes))
        known = {r["code"] for r in rows}
        return [code for code in codes if code not in known]

    async def lock_series_numbers(self, code: str) -> set[int] | None:
        locked = await self.conn.fetchval(
            "SELECT true FROM series WHERE code = $1 FOR UPDATE", code
        )
        if locked is None:
            return None
        rows = await self.conn.fetch(
            "SELECT series_number FROM events WHERE series_code = $1 AND series_number IS NOT NULL",
            code,
        )
        return {row["series_number"] for row in rows}

    async def upsert_series(self, series: Series) -> None:
        await self.conn.execute(
            """INSERT INTO series (code, title, description) VALUES ($1, $2, $3)
               ON CONFLICT (code) DO UPDATE SET title = EXCLUDED.title,
                   description = EXCLUDED.description""",
            series.code,
            series.title,
            series.description,
        )

    async def list_series(self) -> list[Series]:
        rows = await self.conn.fetch("SELECT code, title, description FROM series ORDER BY title")
        return [Series(r["code"], r["title"], r["description"]) for r in rows]

    async def public_statuses(self) -> dict[uuid.UUID, EventStatus]:
        rows = await self.conn.fetch("SELECT id, status FROM events WHERE status <> 'draft'")
        return {row["id"]: row["status"] for row in rows}

    async def upsert_regions(self, regions: list[Region]) -> None:
        await self.conn.executemany(
            """INSERT INTO regions (code, name, province, supra_region) VALUES ($1, $2, $3, $4)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
                   province = EXCLUDED.province, supra_region = EXCLUDED.supra_region""",
            [(r.code, r.name, r.province, r.supra_region) for r in regions],
        )

    async def upsert_schools(self, schools: list[School]) -> None:
        await self.conn.executemany(
            """INSERT INTO schools (code, name, place, region_code) VALUES ($1, $2, $3, $4)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, place = EXCLUDED.place,
                   region_code = EXCLUDED.region_code, updated_at = now()""",
            [(s.code, s.name, s.place, s.region_code) for s in schools],
        )

    async def search_schools(self, query: str, region_code: str | None, limit: int) -> list[School]:
        rows = await self.conn.fetch(
            """SELECT code, name, place, region_code FROM schools
               WHERE (strpos(lower(name), lower($1)) > 0 OR strpos(lower(place), lower($1)) > 0)
                 AND ($2::text IS NULL OR region_code = $2)
               ORDER BY name, code LIMIT $3""",
            query,
            region_code,
            limit,
        )
        return [School(r["code"], r["name"], r["place"], r["region_code"]) for r in rows]

    async def list_regions(self) -> list[Region]:
        rows = await self.conn.fetch(
            "SELECT code, name, province, supra_region FROM regions ORDER BY name"
        )
        return [Region(r["code"], r["name"], r["province"], r["supra_region"]) for r in rows]

    async def get_region(self, code: str) -> Region | None:
        row = await self.conn.fetchrow(
            "SELECT code, name, province, supra_region FROM regions WHERE code = $1", code
        )
        if row is None:
            return None
        return Region(row["code"], row["name"], row["province"], row["supra_region"])

    async def add_messages(self, messages: list[Message]) -> None:
        await outbox.enqueue_many(self.conn, messages, schema=self.schema)

    async def record_action(
        self, who: Organiser, action: str, event_id: uuid.UUID, detail: dict[str, object]
    ) -> None:
        if self.audit is None:
            raise RuntimeError("this repository was made without the audit log")
        await self.audit.record(who, action, event_id=event_id, detail=detail, conn=self.conn)
