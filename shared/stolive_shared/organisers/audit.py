"""The audit log (who did what, when, allowed or not) and the event scope it is checked with.

Every service writes its organisers' actions to the one table ``organisers.audit`` with its
own pool, so the programme team reads one log. A row names what was acted on without personal
data: a registration id, an event id, an account id, or a keyed hash of an address (which an
erasure cannot undo, and which tells nobody the address). Rows are kept ``audit_retention_days``
(``AUDIT_RETENTION_DAYS``, two years by default), then removed by the registrations worker's
retention job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from stolive_shared.organisers import SCHEMA
from stolive_shared.organisers.roles import Organiser

Outcome = Literal["done", "denied"]

# What the audit page shows for each action, in Dutch.
ACTION_NL: dict[str, str] = {
    "sign_in": "ingelogd",
    "sign_in_link_sent": "inloglink verstuurd",
    "access": "toegang gevraagd",
    "export": "gegevens geëxporteerd",
    "erase": "gegevens gewist",
    "attendee_csv": "deelnemerslijst gedownload",
    "check_in": "ingecheckt",
    "check_in_undone": "inchecken ongedaan gemaakt",
    "registration_added": "aanmelding toegevoegd",
    "registration_cancelled": "aanmelding geannuleerd",
    "registration_promoted": "van de wachtlijst geplaatst",
    "registration_corrected": "aanmelding gecorrigeerd",
    "confirmation_resent": "bevestiging opnieuw verstuurd",
    "mailing_saved": "mailing opgeslagen",
    "mailing_scheduled": "mailing ingepland",
    "mailing_unscheduled": "mailing teruggezet naar concept",
    "mailing_test": "proefmail verstuurd",
    "event_changed": "evenement gewijzigd",
    "account_added": "account toegevoegd",
    "account_changed": "account gewijzigd",
    "account_removed": "account verwijderd",
    "token_made": "API-sleutel gemaakt",
    "token_revoked": "API-sleutel ingetrokken",
    "dead_letter_replayed": "onbestelbaar bericht opnieuw aangeboden",
    "dead_letter_discarded": "onbestelbaar bericht afgehandeld",
}


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    role: str
    service: str
    action: str
    outcome: Outcome
    event_id: uuid.UUID | None
    subject: str | None
    detail: dict[str, Any]

    @property
    def action_nl(self) -> str:
        return ACTION_NL.get(self.action, self.action)


class AuditLog:
    """Writes and reads ``organisers.audit`` for one service (``service`` names it)."""

    def __init__(self, pool: asyncpg.Pool, service: str) -> None:
        self.pool = pool
        self.service = service

    async def record(
        self,
        who: Organiser,
        action: str,
        *,
        outcome: Outcome = "done",
        event_id: uuid.UUID | None = None,
        subject: str | None = None,
        detail: Mapping[str, Any] | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> None:
        """One row; pass ``conn`` to write it in the transaction of the action itself."""
        await (conn or self.pool).execute(
            f"""INSERT INTO {SCHEMA}.audit
                (account_id, actor, role, service, action, outcome, event_id, subject, detail)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            who.account_id,
            who.email,
            who.role,
            self.service,
            action,
            outcome,
            event_id,
            subject,
            # The pools' jsonb codec encodes it (``stolive_shared.db``); values made plain first.
            json.loads(json.dumps(dict(detail or {}), default=str)),
        )

    async def rows(
        self,
        *,
        limit: int = 200,
        before_id: int | None = None,
        action: str | None = None,
        actor: str | None = None,
        event_id: uuid.UUID | None = None,
    ) -> list[AuditRow]:
        """Newest first, at most ``limit``, optionally filtered."""
        rows = await self.pool.fetch(
            f"""SELECT id, at, actor, role, service, action, outcome, event_id, subject, detail
                FROM {SCHEMA}.audit
                WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2)
                  AND ($3::text IS NULL OR actor ILIKE '%' || $3 || '%')
                  AND ($4::uuid IS NULL OR event_id = $4)
                ORDER BY id DESC LIMIT $5""",
            before_id,
            action,
            actor,
            event_id,
            limit,
        )
        return [AuditRow(**dict(row)) for row in rows]

    async def remove_older_than(self, days: float, limit: int) -> int:
        """The retention rule: rows older than ``days``, at most ``limit`` at a time."""
        removed = await self.pool.fetch(
            f"""DELETE FROM {SCHEMA}.audit WHERE id IN (
                    SELECT id FROM {SCHEMA}.audit WHERE at < now() - make_interval(days => $1)
                    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                RETURNING id""",
            int(days),
            limit,
        )
        return len(removed)


class EventScope:
    """The regions of each event, as the events service wrote them (``organisers.event_scope``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def regions(self, event_id: uuid.UUID) -> frozenset[str]:
        codes = await self.pool.fetchval(
            f"SELECT region_codes FROM {SCHEMA}.event_scope WHERE event_id = $1", event_id
        )
        return frozenset(codes or ())

    async def events_in(self, who: Organiser) -> frozenset[uuid.UUID] | None:
        """The events ``who`` may see, or None for every event."""
        if who.everywhere:
            return None
        if who.role == "checkin":
            return who.events
        rows = await self.pool.fetch(
            f"SELECT event_id FROM {SCHEMA}.event_scope WHERE region_codes && $1::text[]",
            sorted(who.regions),
        )
        return frozenset(row["event_id"] for row in rows)

    @staticmethod
    async def write(
        conn: asyncpg.Connection, event_id: uuid.UUID, region_codes: Sequence[str]
    ) -> None:
        """For the events service, in the transaction that changes the event."""
        await conn.execute(
            f"""INSERT INTO {SCHEMA}.event_scope (event_id, region_codes) VALUES ($1, $2)
                ON CONFLICT (event_id) DO UPDATE SET region_codes = EXCLUDED.region_codes""",
            event_id,
            sorted(set(region_codes)),
        )
