"""The agenda a mailing shows ("Bijeenkomst"): the next published events, from the events
service's API (``stolive_shared.events_client``). When it does not answer, a preview says so and
sending waits: a newsletter promising an agenda must not go out without it."""

from __future__ import annotations

from datetime import datetime

from sto_notifications.adapters.rendering import UpcomingEvent
from stolive_shared.events_client import EventsClient, EventsUnavailable
from stolive_shared.urls import PublicUrls

__all__ = ["EventsDirectory", "EventsUnavailable"]


class EventsDirectory:
    def __init__(self, events: EventsClient, urls: PublicUrls) -> None:
        self._events = events
        self._urls = urls

    async def upcoming(self, now: datetime, limit: int = 3) -> list[UpcomingEvent]:
        try:
            events = [
                UpcomingEvent(
                    title=item["title"],
                    starts_at=datetime.fromisoformat(item["starts_at"]),
                    description=item.get("description") or "",
                    signup_url=self._urls.sign_up_form(item["id"]),
                )
                for item in await self._events.published_events(now)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise EventsUnavailable(f"the events service's agenda: {exc!r}") from exc
        events = [e for e in events if e.starts_at > now]
        return sorted(events, key=lambda e: e.starts_at)[:limit]
