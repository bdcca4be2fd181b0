"""What the worker's agents share: one PostgreSQL pool, made on first use (never at import),
and the viewer id -> registration profile index the live breakdown per region and role uses.

The registrations and viewer-activity topics have the same partition count and key (the
event id), so Faust's co-partitioning assignor gives one worker both partitions of an event:
the profiles of an event's registrants are in this worker's ``registrant_profiles`` table.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from sto_analytics.config import AnalyticsSettings
from sto_analytics.domain import Profile
from stolive_shared.db import create_pool


class Shared:
    def __init__(self, settings: AnalyticsSettings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self.profiles_table: Any = None
        self._profile_versions: dict[str, int] = {}
        # event -> (version, built at, index); rebuilt after a change, or after 30 s in case
        # the table was recovered from its changelog after the index was first built.
        self._profile_index: dict[str, tuple[int, float, dict[str, Profile]]] = {}
        self.background: set[asyncio.Future[Any]] = set()

    async def pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await create_pool(
                    self._settings.database_url, self._settings.db_schema, max_size=4
                )
            return self._pool

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
