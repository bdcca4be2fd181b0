"""The counts the organisers' event hub and event list show next to each event, read from the
services that own them: seats, waiting list and check-ins from registrations, viewers now from
analytics. One definition per count, the owner's: the hub shows the numbers the attendee list
and the dashboard show, because it asks the same services. A service that does not answer
leaves its counts out ("niet beschikbaar"); the page itself still works.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from stolive_shared.internal import InternalClient, ServiceUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counts:
    confirmed: int | None = None  # seats taken: confirmed registrations
    waitlisted: int | None = None
    checked_in: int | None = None
    viewers: int | None = None  # watching now (live broadcasts)
    peak: int | None = None

    def seats_left(self, capacity: int | None) -> int | None:
        if capacity is None or self.confirmed is None:
            return None
        return max(capacity - self.confirmed, 0)


class EventCounts:
    def __init__(self, registrations: InternalClient, analytics: InternalClient) -> None:
        self.registrations = registrations
        self.analytics = analytics

    async def of(self, event_id: uuid.UUID, *, live: bool = True) -> Counts:
        """The counts of one event; ``live`` also asks analytics for its viewers."""
        seats, viewers = await asyncio.gather(
            self._read(self.registrations, f"/api/events/{event_id}/counts"),
            self._read(self.analytics, f"/internal/events/{event_id}/live") if live else _none(),
        )
        return Counts(
            confirmed=seats.get("confirmed") if seats else None,
            waitlisted=seats.get("waitlisted") if seats else None,
            checked_in=seats.get("checked_in") if seats else None,
            viewers=viewers.get("viewers") if viewers else None,
            peak=viewers.get("peak") if viewers else None,
        )

    async def of_many(
        self, event_ids: Iterable[uuid.UUID], *, live: Iterable[uuid.UUID] = ()
    ) -> dict[uuid.UUID, Counts]:
        """Counts of a list's events, asked at once; viewers only for ``live`` ones."""
        ids, watching = list(event_ids), set(live)
        found = await asyncio.gather(*(self.of(i, live=i in watching) for i in ids))
        return dict(zip(ids, found, strict=True))

    @staticmethod
    async def _read(client: InternalClient, path: str) -> dict[str, int] | None:
        try:
            answer: dict[str, int] = await client.get(path)
        except ServiceUnavailable as exc:
            log.warning("counts not available: %s", exc)
            return None
        return answer


async def _none() -> None:
    return None
