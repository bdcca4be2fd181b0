"""The events service's use cases, on the in-memory store: what planning, publishing and
changing an event stores, and which messages it leaves in the outbox for the relay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from sto_events.domain import (
    DuplicateSeriesNumber,
    Event,
    EventRuleViolation,
    IllegalTransition,
    Region,
    Series,
)
from sto_events.repository import EventFilter, EventsRepository
from sto_events.repository.memory import EventsState, memory_store
from sto_events.service import EventNotFound, EventsService, RegionNotFound
from stolive_shared.contracts.events import EventPublished, EventRescheduled, EventUpdated
from stolive_shared.store import InMemoryStore
from tests.unit.test_event_rules import NOW, webinar

GRONINGEN = Region("groningen", "Groningen", "Groningen", "Noord-Nederland")

MemoryStore = InMemoryStore[EventsState, EventsRepository]


@pytest.fixture
def store() -> MemoryStore:
    return memory_store()


@pytest.fixture
async def service(store: MemoryStore) -> EventsService:
    service = EventsService(store, clock=lambda: NOW)
    await service.import_regions([GRONINGEN])
    return service


def meeting(*regions: str) -> Event:
    return webinar(
        kind="regional_meeting", title="Regiobijeenkomst", capacity=40, region_codes=regions
    )


class TestPlanning:
    async def test_a_new_event_is_stored_as_a_draft_and_sends_nothing(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        created = await service.create_event(meeting("groningen"))
        assert await service.get_event(created.id, public_only=False) == created
        assert created.status == "draft"
        assert store.state.outbox == []

    async def test_an_event_with_an_unknown_region_is_refused_and_nothing_is_stored(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        with pytest.raises(EventRuleViolation, match="onbekende regio: zeeland") as refused:
            await service.create_event(meeting("groningen", "zeeland"))
        assert refused.value.field == "region_codes"
        assert store.state.events == {}

    async def test_a_webinar_gets_the_next_free_number_in_its_series(
        self, service: EventsService
    ) -> None:
        await service.create_event(webinar(series_number=4))
        created = await service.create_event(webinar())
        assert (created.series_code, created.series_number) == ("sto-live", 5)

    async def test_webinars_planned_at_once_get_different_numbers(
        self, service: EventsService
    ) -> None:
        created = await asyncio.gather(*(service.create_event(webinar()) for _ in range(3)))
        assert sorted(e.series_number or 0 for e in created) == [1, 2, 3]

    async def test_each_series_counts_its_own_numbers(self, service: EventsService) -> None:
        await service.save_series(Series("techniekpact", "Techniekpact"))
        await service.create_event(webinar())
        created = await service.create_event(webinar(series_code="techniekpact"))
        assert created.series_number == 1

    async def test_a_taken_broadcast_number_is_refused(self, service: EventsService) -> None:
        await service.create_event(webinar(series_number=2))
        with pytest.raises(DuplicateSeriesNumber, match="#2"):
            await service.create_event(webinar(series_number=2))

    async def test_a_webinar_in_an_unknown_series_is_refused(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        with pytest.raises(EventRuleViolation, match="onbekende reeks: elders"):
            await service.create_event(webinar(series_code="elders"))
        assert store.state.events == {}

    async def test_an_event_in_the_past_is_refused(self, service: EventsService) -> None:
        with pytest.raises(EventRuleViolation, match="toekomst"):
            await service.create_event(webinar(starts_at=NOW - timedelta(hours=1)))


class TestChanges:
    async def test_publishing_a_draft_writes_event_published_to_the_outbox(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        published = await service.publish(draft.id)
        assert (published.status, published.revision) == ("published", 2)
        [message] = store.state.outbox
        assert isinstance(message, EventPublished)
        assert message.event.event_id == draft.id
        assert message.partition_key() == str(draft.id)

    async def test_each_step_writes_its_own_message(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        await service.publish(draft.id)
        await service.go_live(draft.id)
        ended = await service.end(draft.id, "https://replay.example/1")
        assert ended.replay_url == "https://replay.example/1"
        assert [m.type for m in store.state.outbox] == [
            "event.published",
            "event.went_live",
            "event.ended",
            "event.replay_published",
        ]

    async def test_moving_a_published_event_tells_when_it_was(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        await service.publish(draft.id)
        later = draft.starts_at + timedelta(days=1)
        await service.reschedule(draft.id, later, later + timedelta(hours=1))
        message = store.state.outbox[-1]
        assert isinstance(message, EventRescheduled)
        assert (message.previous_starts_at, message.event.starts_at) == (draft.starts_at, later)

    async def test_a_change_to_an_unknown_event_is_event_not_found(
        self, service: EventsService
    ) -> None:
        with pytest.raises(EventNotFound):
            await service.publish(uuid.uuid4())

    async def test_a_step_the_status_does_not_allow_changes_nothing(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        await service.publish(draft.id)
        with pytest.raises(IllegalTransition):
            await service.publish(draft.id)
        assert len(store.state.outbox) == 1
        assert (await service.get_event(draft.id, public_only=False)).revision == 2

    async def test_an_update_to_an_unknown_region_is_refused_and_the_event_stays(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        created = await service.create_event(meeting("groningen"))
        await service.publish(created.id)
        with pytest.raises(EventRuleViolation, match="onbekende regio: zeeland"):
            await service.update(created.id, {"region_codes": ("zeeland",)})
        stored = await service.get_event(created.id, public_only=False)
        assert (stored.region_codes, stored.revision) == (("groningen",), 2)
        assert len(store.state.outbox) == 1

    async def test_an_update_of_a_published_event_names_the_changed_fields(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        created = await service.create_event(meeting("groningen"))
        await service.publish(created.id)
        await service.update(created.id, {"capacity": 60, "title": "Regiobijeenkomst Noord"})
        message = store.state.outbox[-1]
        assert isinstance(message, EventUpdated)
        assert message.changed_fields == ("capacity", "title")

    async def test_an_update_that_changes_nothing_stores_and_sends_nothing(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        created = await service.create_event(meeting("groningen"))
        heard: list[Event] = []
        service.listeners.append(heard.append)
        same = await service.update(created.id, {"capacity": 40})
        assert same.revision == 1
        assert (heard, store.state.outbox) == ([], [])


class TestListeners:
    async def test_listeners_hear_of_a_change_only_after_it_committed(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        committed: list[str] = []
        service.listeners.append(lambda e: committed.append(store.state.events[e.id].status))
        await service.publish(draft.id)
        assert committed == ["published"]

    async def test_a_refused_change_is_heard_by_no_one(self, service: EventsService) -> None:
        draft = await service.create_event(webinar())
        heard: list[Event] = []
        service.listeners.append(heard.append)
        with pytest.raises(IllegalTransition):
            await service.go_live(draft.id)
        assert heard == []


class TestReading:
    async def test_the_public_sees_no_drafts_or_cancelled_events(
        self, service: EventsService
    ) -> None:
        draft = await service.create_event(webinar())
        with pytest.raises(EventNotFound):
            await service.get_event(draft.id, public_only=True)
        await service.cancel(draft.id, "geen spreker")
        with pytest.raises(EventNotFound):
            await service.get_event(draft.id, public_only=True)
        assert await service.list_events(EventFilter()) == []

    async def test_the_beacon_statuses_leave_drafts_out(self, service: EventsService) -> None:
        draft = await service.create_event(webinar())
        published = await service.create_event(webinar())
        await service.publish(published.id)
        assert await service.public_statuses() == {published.id: "published"}
        assert draft.id not in await service.public_statuses()

    async def test_regions_are_updated_by_code(self, service: EventsService) -> None:
        await service.import_regions([Region("groningen", "Stad Groningen")])
        assert await service.regions() == [Region("groningen", "Stad Groningen")]
        assert (await service.region("groningen")).name == "Stad Groningen"

    async def test_an_unknown_region_is_region_not_found(self, service: EventsService) -> None:
        with pytest.raises(RegionNotFound):
            await service.region("zeeland")
