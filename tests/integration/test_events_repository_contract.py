"""The events repository's contract: every case runs on PostgreSQL and on the in-memory fake.

The use-case unit tests run on the fake (``sto_events.repository.memory``); these cases hold
it to what the PostgreSQL repository does, so it cannot drift. Each PostgreSQL case gets a
freshly migrated schema of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from sto_events import domain
from sto_events.bootstrap import DEFINITION
from sto_events.domain import DuplicateSeriesNumber, Event, Region, Series
from sto_events.repository import EventFilter, EventsRepository
from sto_events.repository.memory import STO_LIVE, memory_store
from sto_events.repository.postgres import postgres_store
from stolive_shared.contracts.events import EventKind, EventStatus
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.store import Store

DAY_ONE = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
REGIONS = [
    Region("groningen", "Groningen", "Groningen", "Noord-Nederland"),
    Region("drenthe", "Drenthe", "Drenthe", "Noord-Nederland"),
    Region("rotterdam-zuid", "Rotterdam Zuid", "Zuid-Holland"),
]


@dataclass
class Backend:
    store: Store[EventsRepository]
    # The ids of the messages the outbox holds, in the order they were added.
    outbox: Callable[[], Awaitable[list[uuid.UUID]]]


@pytest.fixture(params=["postgres", "memory"])
async def backend(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = memory_store()

        async def kept_in_memory() -> list[uuid.UUID]:
            return [message.message_id for message in memory.state.outbox]

        yield Backend(memory, kept_in_memory)
        return
    schema = f"contract_{uuid.uuid4().hex[:8]}"
    await apply_migrations(database_url, schema, [DEFINITION.migrations])
    pool = await create_pool(database_url, schema, max_size=2)

    async def kept_in_postgres() -> list[uuid.UUID]:
        rows = await pool.fetch("SELECT message_id FROM outbox ORDER BY id")
        return [row["message_id"] for row in rows]

    try:
        yield Backend(postgres_store(pool, schema), kept_in_postgres)
    finally:
        await pool.close()


def an_event(
    title: str,
    kind: EventKind = "regional_meeting",
    status: EventStatus = "published",
    *,
    day: float = 1,
    **details: object,
) -> Event:
    starts_at = DAY_ONE + timedelta(days=day)
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "kind": kind,
        "status": status,
        "title": title,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=2),
        "capacity": None if kind == "webinar" else 40,
    }
    fields.update(details)
    return Event(**fields)  # type: ignore[arg-type]


async def store_all(store: Store[EventsRepository], *events: Event) -> None:
    async with store.transaction() as repository:
        await repository.upsert_regions(REGIONS)
        for event in events:
            await repository.insert_event(event)


async def titles(store: Store[EventsRepository], where: EventFilter) -> list[str]:
    async with store.reading() as repository:
        return [event.title for event in await repository.list_events(where)]


async def test_an_event_comes_back_as_it_was_stored(backend: Backend) -> None:
    event = an_event(
        "Techniek in Groningen",
        description="Een middag met de regio",
        venue="Noorderpoort, Groningen",
        stream_url="https://stream.example/groningen",
        region_codes=("drenthe", "groningen"),
        waitlist_enabled=False,
        registration_opens_at=DAY_ONE - timedelta(days=20),
        registration_closes_at=DAY_ONE,
        reminder_offsets_hours=(48.0, 2.5),
        revision=3,
    )
    await store_all(backend.store, event)
    async with backend.store.reading() as repository:
        assert await repository.get_event(event.id) == event
        assert await repository.get_event(uuid.uuid4()) is None
    async with backend.store.transaction() as repository:
        assert await repository.get_event(event.id, for_update=True) == event


async def test_region_codes_come_back_sorted(backend: Backend) -> None:
    event = an_event("Twee regio's", region_codes=("groningen", "drenthe"))
    await store_all(backend.store, event)
    async with backend.store.reading() as repository:
        stored = await repository.get_event(event.id)
    assert stored is not None
    assert stored.region_codes == ("drenthe", "groningen")


async def test_an_update_keeps_kind_and_place_in_the_series(backend: Backend) -> None:
    webinar = an_event("STO LIVE #1", "webinar", series_code="sto-live", series_number=1)
    await store_all(backend.store, webinar)
    changed = replace(
        webinar,
        status="live",
        revision=2,
        title="STO LIVE #1: de regio's",
        starts_at=webinar.starts_at + timedelta(hours=1),
        ends_at=webinar.ends_at + timedelta(hours=1),
        replay_url="https://replay.example/1",
        capacity=500,
        region_codes=("groningen",),
        reminder_offsets_hours=(1.0,),
    )
    async with backend.store.transaction() as repository:
        await repository.update_event(
            replace(changed, kind="national_day", series_code=None, series_number=9)
        )
    async with backend.store.reading() as repository:
        assert await repository.get_event(webinar.id) == changed


async def test_an_update_replaces_the_regions(backend: Backend) -> None:
    meeting = an_event("Regio", region_codes=("drenthe", "groningen"))
    await store_all(backend.store, meeting)
    async with backend.store.transaction() as repository:
        await repository.update_event(replace(meeting, region_codes=("rotterdam-zuid",)))
    async with backend.store.reading() as repository:
        stored = await repository.get_event(meeting.id)
    assert stored is not None
    assert stored.region_codes == ("rotterdam-zuid",)


class TestListingEvents:
    @pytest.fixture
    async def programme(self, backend: Backend) -> Store[EventsRepository]:
        await store_all(
            backend.store,
            an_event("webinar", "webinar", day=1, series_code="sto-live", series_number=1),
            an_event("groningen", day=2, region_codes=("groningen",)),
            an_event("drenthe concept", status="draft", day=3, region_codes=("drenthe",)),
            an_event("landelijke dag", "national_day", status="live", day=4),
            an_event(
                "noord geannuleerd",
                "supra_regional_meeting",
                status="cancelled",
                day=5,
                region_codes=("drenthe", "groningen"),
            ),
            an_event("drenthe afgelopen", status="ended", day=0, region_codes=("drenthe",)),
        )
        return backend.store

    @pytest.mark.parametrize(
        ("where", "expected"),
        [
            (
                EventFilter(),
                ["drenthe afgelopen", "webinar", "groningen", "landelijke dag"],
            ),
            (
                EventFilter(public_only=False),
                [
                    "drenthe afgelopen",
                    "webinar",
                    "groningen",
                    "drenthe concept",
                    "landelijke dag",
                    "noord geannuleerd",
                ],
            ),
            (EventFilter(kind="regional_meeting"), ["drenthe afgelopen", "groningen"]),
            (EventFilter(status="draft"), []),
            (EventFilter(status="draft", public_only=False), ["drenthe concept"]),
            (
                EventFilter(region_code="drenthe", public_only=False),
                [
                    "drenthe afgelopen",
                    "webinar",
                    "drenthe concept",
                    "landelijke dag",
                    "noord geannuleerd",
                ],
            ),
            (EventFilter(region_code="rotterdam-zuid"), ["webinar", "landelijke dag"]),
            (
                EventFilter(
                    starts_from=DAY_ONE + timedelta(days=1),
                    starts_before=DAY_ONE + timedelta(days=4),
                ),
                ["webinar", "groningen"],
            ),
            (
                EventFilter(ends_after=DAY_ONE + timedelta(days=2, hours=2)),
                ["landelijke dag"],
            ),
            (
                EventFilter(ends_after=DAY_ONE + timedelta(days=2, hours=1, minutes=59)),
                ["groningen", "landelijke dag"],
            ),
            (EventFilter(series_code="sto-live"), ["webinar"]),
            (EventFilter(series_code="elders"), []),
            (EventFilter(limit=2), ["drenthe afgelopen", "webinar"]),
            (EventFilter(public_only=False, kind="supra_regional_meeting", limit=0), []),
        ],
    )
    async def test_a_filter_selects_by_start(
        self, programme: Store[EventsRepository], where: EventFilter, expected: list[str]
    ) -> None:
        assert await titles(programme, where) == expected

    async def test_events_starting_together_are_listed_by_id(self, backend: Backend) -> None:
        together = [an_event(f"id {n}", id=uuid.UUID(int=n << 120), day=2) for n in (3, 1, 2)]
        await store_all(backend.store, *together)
        assert await titles(backend.store, EventFilter()) == ["id 1", "id 2", "id 3"]


async def test_unknown_region_codes_are_named_in_the_order_given(backend: Backend) -> None:
    await store_all(backend.store)
    async with backend.store.reading() as repository:
        unknown = await repository.unknown_region_codes(("zeeland", "groningen", "limburg"))
        assert unknown == ["zeeland", "limburg"]
        assert await repository.unknown_region_codes(()) == []


async def test_the_numbers_taken_in_a_series(backend: Backend) -> None:
    await store_all(
        backend.store,
        an_event("#1", "webinar", series_code="sto-live", series_number=1),
        an_event("#4", "webinar", series_code="sto-live", series_number=4),
    )
    async with backend.store.transaction() as repository:
        await repository.upsert_series(Series("techniekpact", "Techniekpact"))
        assert await repository.lock_series_numbers("sto-live") == {1, 4}
        assert await repository.lock_series_numbers("techniekpact") == set()
        assert await repository.lock_series_numbers("onbekend") is None


async def test_a_taken_series_number_is_refused_and_nothing_is_stored(backend: Backend) -> None:
    first = an_event("#7", "webinar", series_code="sto-live", series_number=7)
    second = an_event("#7 nogmaals", "webinar", day=2, series_code="sto-live", series_number=7)
    await store_all(backend.store, first)
    with pytest.raises(DuplicateSeriesNumber, match="#7") as refused:
        async with backend.store.transaction() as repository:
            await repository.insert_event(second)
    assert refused.value.field == "series_number"
    assert await titles(backend.store, EventFilter()) == ["#7"]


async def test_regions_are_added_updated_by_code_and_listed_by_name(backend: Backend) -> None:
    await store_all(backend.store)
    async with backend.store.transaction() as repository:
        await repository.upsert_regions(
            [
                Region("groningen", "Stad Groningen", "Groningen", None),
                Region("achterhoek", "Achterhoek", "Gelderland", "Oost-Nederland"),
            ]
        )
    async with backend.store.reading() as repository:
        assert [r.name for r in await repository.list_regions()] == [
            "Achterhoek",
            "Drenthe",
            "Rotterdam Zuid",
            "Stad Groningen",
        ]
        assert await repository.get_region("groningen") == Region(
            "groningen", "Stad Groningen", "Groningen", None
        )
        assert await repository.get_region("rotterdam-zuid") == REGIONS[2]
        assert await repository.get_region("zeeland") is None


async def test_series_are_added_renamed_and_listed_by_title(backend: Backend) -> None:
    async with backend.store.reading() as repository:
        assert await repository.list_series() == [STO_LIVE]
    async with backend.store.transaction() as repository:
        await repository.upsert_series(Series("techniekpact", "Techniekpact", "Over het pact"))
        await repository.upsert_series(Series("avond", "Avondsessies"))
        await repository.upsert_series(Series("avond", "Zomeravonden", "In juli"))
    async with backend.store.reading() as repository:
        assert [(s.code, s.title, s.description) for s in await repository.list_series()] == [
            (
                "sto-live",
                "STO LIVE",
                "De genummerde online uitzendingen van Sterk Techniekonderwijs",
            ),
            ("techniekpact", "Techniekpact", "Over het pact"),
            ("avond", "Zomeravonden", "In juli"),
        ]


async def test_public_statuses_leave_out_drafts(backend: Backend) -> None:
    draft = an_event("concept", status="draft")
    live = an_event("live", "national_day", status="live")
    cancelled = an_event("geannuleerd", status="cancelled")
    await store_all(backend.store, draft, live, cancelled)
    async with backend.store.reading() as repository:
        assert await repository.public_statuses() == {live.id: "live", cancelled.id: "cancelled"}


async def test_messages_are_kept_with_the_change_that_caused_them(backend: Backend) -> None:
    draft = an_event("concept", status="draft")
    await store_all(backend.store, draft)
    published = domain.publish(draft)
    async with backend.store.transaction() as repository:
        await repository.update_event(published)
        await repository.add_messages(published.events)
        await repository.add_messages([])
    assert await backend.outbox() == [published.events[0].message_id]


async def test_a_transaction_that_fails_keeps_neither_change_nor_messages(
    backend: Backend,
) -> None:
    draft = an_event("concept", status="draft")
    await store_all(backend.store, draft)
    published = domain.publish(draft)

    async def publish_then_fail() -> None:
        async with backend.store.transaction() as repository:
            await repository.update_event(published)
            await repository.add_messages(published.events)
            raise RuntimeError("stopped halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        await publish_then_fail()
    assert await backend.outbox() == []
    async with backend.store.reading() as repository:
        assert await repository.public_statuses() == {}
