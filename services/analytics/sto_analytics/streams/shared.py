"""What the worker's agents share: the viewer id -> registration profile index the live
breakdown per region and role uses, the background tasks they start, and the one way they
wait for PostgreSQL before acking a record.

The registrations and viewer-activity topics have the same partition count and key (the
event id), so Faust's co-partitioning assignor gives one worker both partitions of an event:
the profiles of an event's registrants are in this worker's ``registrant_profiles`` table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from faust.types import TableT

from sto_analytics.domain import Profile

log = logging.getLogger(__name__)


class Shared:
    def __init__(self) -> None:
        # registration id -> profile fields, per event key (set by the registrations agent)
        self.profiles_table: TableT[str, dict[str, Any]] | None = None
        self._profile_versions: dict[str, int] = {}
        # event -> (version, built at, index); rebuilt after a change, or after 30 s in case
        # the table was recovered from its changelog after the index was first built.
        self._profile_index: dict[str, tuple[int, float, dict[str, Profile]]] = {}
        self.background: set[asyncio.Future[Any]] = set()

    def profiles_changed(self, event_key: str) -> None:
        self._profile_versions[event_key] = self._profile_versions.get(event_key, 0) + 1

    def profiles_by_viewer(self, event_key: str) -> dict[str, Profile]:
        """viewer id -> profile of the event's registrants, rebuilt only after a change."""
        version = self._profile_versions.get(event_key, 0)
        cached = self._profile_index.get(event_key)
        now = time.monotonic()
        if cached is not None and cached[0] == version and now - cached[1] < 30.0:
            return cached[2]
        raw = self.profiles_table.get(event_key) if self.profiles_table is not None else None
        index = {}
        for fields in (raw or {}).values():
            profile = Profile.from_list(fields)
            index[profile.viewer_id] = profile
        self._profile_index[event_key] = (version, now, index)
        return index


async def until_written(what: str, write: Callable[[], Awaitable[None]]) -> None:
    """Retry ``write`` every second until PostgreSQL takes it: the record that caused it is
    acked only afterwards, so nothing is lost while the database is away."""
    while True:
        try:
            await write()
            return
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("%s not written, retrying: %r", what, exc)
            await asyncio.sleep(1.0)
