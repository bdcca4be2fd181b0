"""The events service's public API, read by the other services: one client, one timeout, one
error. Every call is a fresh stateless request (``stolive_shared.http``); an events service
that does not answer, or answers nonsense, is ``EventsUnavailable`` (a 503 where it reaches a
request), and each caller decides what it can do without.

``RegionDirectory`` and ``SchoolDirectory`` keep a copy of the lists the forms and figures
name things by, so a page served to the public never waits on another service for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from stolive_shared.errors import DependencyUnavailable
from stolive_shared.http import stateless_client

log = logging.getLogger(__name__)

TIMEOUT_S = 3.0
# The most school sites one answer of ``GET /api/schools`` lists.
SCHOOLS_PER_ANSWER = 1000


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

    async def schools(
        self, region_code: str | None = None, limit: int = SCHOOLS_PER_ANSWER
    ) -> list[dict[str, Any]]:
        """School sites (code, name, place, region_code, label), by name; of one region."""
        params = {"limit": str(limit), **({"region": region_code} if region_code else {})}
        schools: list[dict[str, Any]] = await self._get("/api/schools", params)
        return schools

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
    """The STO regions, a copy kept in memory: a form never waits on the events service for
    them once the first copy is in.

    A copy older than ``keep_s`` is served while one fetch refreshes it in the background.
    Before the first copy (an empty list is none: regions are being set up), callers asking
    at once share one fetch; after a failed one they get what was known (none: a sign-up form
    without its region list is still a form) at once for ``recheck_s``, so an events service
    that is away costs no page its timeout.
    """

    def __init__(
        self,
        events: EventsClient,
        keep_s: float = 300.0,
        *,
        recheck_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = events
        self._keep_s = keep_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._regions: list[dict[str, Any]] = []
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._fetching: asyncio.Task[None] | None = None

    async def regions(self) -> list[dict[str, Any]]:
        now = self._clock()
        under_way = self._fetching is not None and not self._fetching.done()
        if self._fetched_at is not None:
            if now - self._fetched_at > self._keep_s and (under_way or self._may_try(now)):
                self._fetch_in_background()
            return self._regions
        if under_way or self._may_try(now):
            await asyncio.shield(self._fetch_in_background())
        return self._regions

    def _may_try(self, now: float) -> bool:
        return self._failed_at is None or now - self._failed_at >= self._recheck_s

    def _fetch_in_background(self) -> asyncio.Task[None]:
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch(), name="region-directory")
        return self._fetching

    async def _fetch(self) -> None:
        asked_at = self._clock()
        try:
            regions = await self._events.regions()
        except EventsUnavailable as exc:
            self._failed_at = asked_at
            log.warning("region list not refreshed: %r", exc)
            return
        self._regions, self._failed_at = regions, None
        self._fetched_at = asked_at if regions else None


@dataclass(frozen=True)
class SchoolSite:
    """A school site (vmbo-vestiging) as the events service lists it."""

    code: str  # BRIN number and vestigingsnummer, e.g. "12AB00"
    name: str
    place: str
    region_code: str | None
    label: str  # how forms and figures name it: "Name (Place)"

    @classmethod
    def of(cls, raw: dict[str, Any]) -> SchoolSite:
        name, place = str(raw["name"]), str(raw.get("place") or "")
        region = raw.get("region_code")
        return cls(
            code=str(raw["code"]),
            name=name,
            place=place,
            region_code=str(region) if region else None,
            label=str(raw.get("label") or (f"{name} ({place})" if place else name)),
        )


class SchoolDirectory:
    """The school sites, a copy kept in memory: reading it never waits on the events service.

    A copy older than ``refresh_s`` is refreshed in the background while the old one is
    served; until the first copy has come in the list is empty (a sign-up form then offers
    the free-text field alone). ``known`` may fetch at once for a code the copy lacks (a site
    imported a moment ago), at most once per ``recheck_s``, so unknown codes cannot make this
    process hammer the events service. A failed refresh keeps what was known.
    """

    def __init__(
        self,
        events: EventsClient,
        *,
        refresh_s: float = 300.0,
        recheck_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = events
        self._refresh_s = refresh_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._sites: dict[str, SchoolSite] = {}
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._refreshing: asyncio.Task[bool] | None = None
        self._lock = asyncio.Lock()
        self._completed = 0  # fetches tried and finished, successful or not

    def sites(self) -> list[SchoolSite]:
        """Every site known, by name (starts a refresh in the background when stale)."""
        self._refresh_if_stale()
        return list(self._sites.values())

    def get(self, code: str) -> SchoolSite | None:
        self._refresh_if_stale()
        return self._sites.get(code)

    def label(self, code: str) -> str:
        """The site's label; the code itself while the site is unknown here."""
        site = self.get(code)
        return site.label if site is not None else code

    async def known(self, code: str) -> SchoolSite | None:
        """The site with this code; fetched again first if the copy lacks it (at most once
        per ``recheck_s``; callers asking while a fetch is under way share its result)."""
        site = self.get(code)
        if site is None and (self._lock.locked() or self._may_try()):
            await self._refresh(done_before=self._completed)
            site = self._sites.get(code)
        return site

    async def refresh(self) -> bool:
        """Fetch the whole list now; False (keeping the old copy) when that failed."""
        return await self._refresh()

    async def _refresh(self, done_before: int | None = None) -> bool:
        async with self._lock:
            if done_before is not None and self._completed != done_before:
                return self._fetched_at == self._tried_at  # fetched while this caller waited
            self._tried_at = self._clock()
            try:
                found = await self._fetch()
            except (EventsUnavailable, KeyError, TypeError, ValueError) as exc:
                log.warning("school list not refreshed: %r", exc)
                return False
            finally:
                self._completed += 1
            self._sites = found
            self._fetched_at = self._tried_at
            return True

    def start(self) -> None:
        """Fetch in the background now (an app's startup): the first form has its list."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self.refresh(), name="school-directory")

    async def close(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def _fetch(self) -> dict[str, SchoolSite]:
        listed = await self._events.schools()
        if len(listed) >= SCHOOLS_PER_ANSWER:  # more than one answer holds: region by region
            regions = await self._events.regions()
            for region in regions:
                listed.extend(await self._events.schools(str(region["code"])))
        sites = (SchoolSite.of(raw) for raw in listed)
        return {site.code: site for site in sorted(sites, key=lambda s: (s.name, s.code))}

    def _may_try(self) -> bool:
        return self._tried_at is None or self._clock() - self._tried_at >= self._recheck_s

    def _refresh_if_stale(self) -> None:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._refresh_s:
            return
        if self._tried_at is not None and now - self._tried_at < min(
            self._refresh_s, self._recheck_s
        ):
            return  # the last try failed a moment ago
        with contextlib.suppress(RuntimeError):  # no running loop: the next caller's does
            self.start()
