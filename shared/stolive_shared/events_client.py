"""The events service's public API, read by the other services: one client, one timeout, one
error. Every call is a fresh stateless request (``stolive_shared.http``); an events service
that does not answer, or answers nonsense, is ``EventsUnavailable`` (a 503 where it reaches a
request), and each caller decides what it can do without.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

from stolive_shared.errors import DependencyUnavailable
from stolive_shared.http import stateless_client

TIMEOUT_S = 3.0


class EventsUnavailable(DependencyUnavailable):
    """The events service did not answer (in time), or not with what its API promises."""


class EventsClient:
    def __init__(self, events_api_url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self._base = events_api_url.rstrip("/")
        self._timeout_s = timeout_s

    async def regions(self) -> list[dict[str, Any]]:
        """The STO regions: code, name, province, supra-region."""
        regions: list[dict[str, Any]] = await self._get("/api/regions")
        return regions

    async def published_events(self, starts_from: datetime) -> list[dict[str, Any]]:
        """Published events starting from ``starts_from``, as ``GET /api/events`` lists them."""
        events: list[dict[str, Any]] = await self._get(
            "/api/events", {"status": "published", "starts_from": starts_from.isoformat()}
        )
        return events

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            async with stateless_client(timeout=self._timeout_s) as client:
                response = await client.get(self._base + path, params=params)
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EventsUnavailable(f"events service at {self._base}{path}: {exc}") from exc


class RegionDirectory:
    """The STO regions, kept for ``keep_s``; what was known last (or none) while the events
    service is away: a sign-up form without its region list is still a form."""

    def __init__(self, events: EventsClient, keep_s: float = 300.0) -> None:
        self._events = events
        self._keep_s = keep_s
        self._regions: list[dict[str, Any]] = []
        self._fetched_at = 0.0

    async def regions(self) -> list[dict[str, Any]]:
        if time.monotonic() - self._fetched_at > self._keep_s or not self._regions:
            try:
                self._regions = await self._events.regions()
                self._fetched_at = time.monotonic()
            except EventsUnavailable:
                return self._regions
        return self._regions
