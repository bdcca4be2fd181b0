"""The events service's public API, read for the "Bijeenkomst" block of a mailing.

``GET /api/events`` lists published events; a mailing shows the next few. When the events
service does not answer, a preview says so and sending waits: a newsletter promising an
agenda must not go out without it.
"""

from __future__ import annotations

from datetime import datetime

import httpx

from sto_notifications.rendering import UpcomingEvent
from stolive_shared.errors import DependencyUnavailable
from stolive_shared.http import stateless_client


class EventsUnavailable(DependencyUnavailable):
    pass


class EventsDirectory:
    def __init__(self, events_api_url: str, public_base_url: str, timeout_s: float = 3.0) -> None:
        self._url = events_api_url.rstrip("/") + "/api/events"
        self._public = public_base_url.rstrip("/")
        self._timeout_s = timeout_s

    async def upcoming(self, now: datetime, limit: int = 3) -> list[UpcomingEvent]:
        try:
            async with stateless_client(timeout=self._timeout_s) as client:
                response = await client.get(
                    self._url, params={"status": "published", "starts_from": now.isoformat()}
                )
                response.raise_for_status()
                listed = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EventsUnavailable(f"events service at {self._url}: {exc}") from exc
        events = [
            UpcomingEvent(
                title=item["title"],
                starts_at=datetime.fromisoformat(item["starts_at"]),
                description=item.get("description") or "",
                signup_url=f"{self._public}/registrations/events/{item['id']}/aanmelden",
            )
            for item in listed
        ]
        events = [e for e in events if e.starts_at > now]
        return sorted(events, key=lambda e: e.starts_at)[:limit]
