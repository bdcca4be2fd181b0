"""What was sent about a registration (an organiser's answer to "did they get the e-mail?"),
and everything this service holds about one person (their export)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from sto_notifications import repository


class EmailHistory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of_registration(self, registration_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every e-mail about the registration, oldest first, with how it went."""
        async with self._pool.acquire() as conn:
            return await repository.email_status(conn, registration_id)

    async def event_of(self, registration_id: uuid.UUID) -> uuid.UUID | None:
        """The registration's event (what an organiser's scope is checked against)."""
        async with self._pool.acquire() as conn:
            return await repository.event_of_registration(conn, registration_id)

    async def about_person(
        self, person_key: str, registration_ids: list[uuid.UUID]
    ) -> dict[str, Any]:
        """For the person's export: their subscription, e-mails and mailings."""
        async with self._pool.acquire() as conn:
            return await repository.person_data(conn, person_key, registration_ids)
