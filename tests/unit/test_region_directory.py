"""The copy of the STO regions the forms name regions by: a page never waits on the events
service once the first copy is in, callers asking at once share one fetch, and an events
service that is away costs a page its timeout at most once per recheck."""

from __future__ import annotations

import asyncio
from typing import Any

from stolive_shared.events_client import EventsClient, EventsUnavailable, RegionDirectory
from tests.unit.test_registrations_schools import Clock, settled

DRENTHE = {"code": "drenthe", "name": "Drenthe"}
TWENTE = {"code": "twente", "name": "Twente"}


class FakeEvents(EventsClient):
    """The events service's region list, answering from memory (or not at all)."""

    def __init__(self, regions: list[dict[str, Any]]) -> None:
        super().__init__("http://events.invalid")
        self.listed = regions
        self.away = False
        self.calls = 0

    async def regions(self) -> list[dict[str, Any]]:
        self.calls += 1
        await asyncio.sleep(0.01)  # the network: other callers run meanwhile
        if self.away:
            raise EventsUnavailable("away")
        return list(self.listed)


async def test_forms_asking_at_once_before_the_first_copy_share_one_fetch() -> None:
    events = FakeEvents([DRENTHE])
    directory = RegionDirectory(events, clock=Clock())

    answers = await asyncio.gather(*(directory.regions() for _ in range(50)))

    assert answers == [[DRENTHE]] * 50
    assert events.calls == 1


async def test_a_stale_copy_is_served_at_once_and_refreshed_behind_it() -> None:
    events, clock = FakeEvents([DRENTHE]), Clock()
    directory = RegionDirectory(events, keep_s=300, clock=clock)
    await directory.regions()
    events.listed.append(TWENTE)

    clock.now += 301
    assert list(await asyncio.gather(directory.regions(), directory.regions())) == [[DRENTHE]] * 2
    await settled()
    assert await directory.regions() == [DRENTHE, TWENTE]
    assert events.calls == 2


async def test_an_events_service_that_is_away_is_asked_again_only_after_the_recheck() -> None:
    events, clock = FakeEvents([DRENTHE]), Clock()
    events.away = True
    directory = RegionDirectory(events, recheck_s=30, clock=clock)

    assert await directory.regions() == []  # a form without its region list
    assert await directory.regions() == []
    assert events.calls == 1  # the second page did not wait for the events service

    events.away = False
    clock.now += 31
    assert await directory.regions() == [DRENTHE]
    assert events.calls == 2


async def test_an_empty_list_is_no_copy_the_regions_being_set_up_show_at_once() -> None:
    events = FakeEvents([])
    directory = RegionDirectory(events, clock=Clock())
    assert await directory.regions() == []

    events.listed.append(DRENTHE)
    assert await directory.regions() == [DRENTHE]
