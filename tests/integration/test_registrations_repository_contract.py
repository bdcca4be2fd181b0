"""The registrations repository's contract: the same cases, on PostgreSQL and on the
in-memory fake the use-case unit tests run on, so the fake cannot drift from the SQL."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from sto_registrations.attendance import Attendance
from sto_registrations.bootstrap import DEFINITION
from sto_registrations.domain import Applicant, EventTerms, Registration
from sto_registrations.repository import (
    InMemoryRegistrations,
    PostgresRegistrations,
    RegistrationsRepository,
    RegistrationsState,
)
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import PersonErased
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.store import InMemoryStore, PostgresStore, Store

SCHEMA = "registrations"
SOON = datetime.now(UTC) + timedelta(days=7)


@dataclass
class Backend:
    store: Store[RegistrationsRepository]
    outbox: Callable[[], Awaitable[list[uuid.UUID]]]  # message ids kept, oldest first


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(params=["postgres", "memory"])
async def backend(request: pytest.FixtureRequest, pool: asyncpg.Pool) -> Backend:
    if request.param == "memory":
        memory: InMemoryStore[RegistrationsState, RegistrationsRepository] = InMemoryStore(
            RegistrationsState(), InMemoryRegistrations
        )

        async def kept_in_memory() -> list[uuid.UUID]:
            return [message.message_id for message in memory.state.outbox]

        return Backend(memory, kept_in_memory)
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE bookings, registrations, events, outbox, attendance CASCADE")

    async def kept_in_postgres() -> list[uuid.UUID]:
        async with pool.acquire() as conn:
            return [r["message_id"] for r in await conn.fetch("SELECT message_id FROM outbox")]

    return Backend(
        PostgresStore(pool, lambda conn: PostgresRegistrations(conn, SCHEMA)), kept_in_postgres
    )


def snapshot(
    event_id: uuid.UUID | None = None, *, starts_in_days: float = 7, **changes: Any
) -> EventSnapshot:
    starts = SOON + timedelta(days=starts_in_days - 7)
    fields: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4(),
        "revision": 1,
        "kind": "regional_meeting",
        "status": "published",
        "title": "Regiobijeenkomst Twente",
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=3),
        "capacity": 2,
    }
    return EventSnapshot(**fields | changes)


def someone(
    event_id: uuid.UUID,
    name: str,
    status: str = "confirmed",
    *,
    role: str = "docent",
    region: str | None = "TW",
    group: uuid.UUID | None = None,
    email: str | None = None,
) -> Registration:
    first = name.split()[0].lower()
    return Registration(
        id=uuid.uuid4(),
        event_id=event_id,
        status=status,  # type: ignore[arg-type]
        applicant=Applicant(
            name=name,
            email=email or f"{first}-{uuid.uuid4().hex[:6]}@school.nl",
            organisation="Het Techniek College",
            role=role,
            region_code=region,
            profiles=("PIE",),
        ),
        viewer_id=f"v_{uuid.uuid4().hex[:24]}",
        queue_number=0,
        created_at=datetime.now(UTC),
        group_id=group,
    )


async def an_event(backend: Backend, **changes: Any) -> uuid.UUID:
    event = snapshot(**changes)
    async with backend.store.transaction() as repository:
        await repository.store_event(event)
    return event.event_id


async def added(backend: Backend, *registrations: Registration) -> list[Registration]:
    async with backend.store.transaction() as repository:
        return [await repository.add(registration) for registration in registrations]


async def seats(backend: Backend, event_id: uuid.UUID) -> tuple[int, int]:
    async with backend.store.transaction() as repository:
        state = await repository.seat_state(event_id)
    assert state is not None
    return state.confirmed, state.waitlisted


def names(registrations: list[Registration]) -> list[str]:
    return [registration.applicant.name for registration in registrations]


# -- events ----------------------------------------------------------------------------------


async def test_a_newer_revision_replaces_the_terms_and_an_older_one_is_ignored(
    backend: Backend,
) -> None:
    first = snapshot(capacity=2)
    async with backend.store.transaction() as repository:
        assert await repository.store_event(first) == EventTerms.of(first)
        newer = first.model_copy(update={"revision": 2, "capacity": 5, "title": "Nieuw"})
        assert await repository.store_event(newer) == EventTerms.of(first)
        assert await repository.store_event(first) is None
        assert await repository.store_event(newer) is None
        assert await repository.terms(first.event_id) == EventTerms.of(newer)
        assert await repository.terms(uuid.uuid4()) is None


async def test_open_events_are_published_or_live_and_not_over_soonest_first(
    backend: Backend,
) -> None:
    later = await an_event(backend, starts_in_days=9, title="Later")
    sooner = await an_event(backend, starts_in_days=3, status="live", title="Eerder")
    await an_event(backend, status="draft", title="Concept")
    await an_event(backend, status="cancelled", title="Afgelast")
    await an_event(backend, starts_in_days=-2, title="Voorbij")
    async with backend.store.reading() as repository:
        open_ = [seats.terms.id for seats in await repository.open_events(datetime.now(UTC))]
    assert open_ == [sooner, later]


async def test_every_event_but_drafts_the_coming_soonest_first_then_the_past(
    backend: Backend,
) -> None:
    for days, title in ((3, "Eerder"), (9, "Later"), (-2, "Voorbij"), (5, "Tussen"), (-9, "Lang")):
        await an_event(backend, starts_in_days=days, title=title)
    await an_event(backend, starts_in_days=6, status="draft", title="Concept")
    async with backend.store.reading() as repository:
        assert [t.title for t in await repository.events_by_start()] == [
            "Eerder",
            "Tussen",
            "Later",
            "Voorbij",
            "Lang",
        ]
        assert [t.title for t in await repository.events_by_start(limit=1)] == ["Eerder"]


# -- seats -----------------------------------------------------------------------------------


async def test_a_registration_is_stored_with_its_place_in_the_queue_and_counted(
    backend: Backend,
) -> None:
    event_id = await an_event(backend)
    anna, bram = await added(
        backend, someone(event_id, "Anna de Vries"), someone(event_id, "Bram Jansen", "waitlisted")
    )
    assert bram.queue_number > anna.queue_number
    assert await seats(backend, event_id) == (1, 1)
    async with backend.store.reading() as repository:
        assert await repository.registration(anna.id) == anna
        assert await repository.registration(uuid.uuid4()) is None


async def test_a_cancellation_gives_back_the_seat_it_held_once(backend: Backend) -> None:
    event_id = await an_event(backend)
    anna, bram = await added(
        backend, someone(event_id, "Anna de Vries"), someone(event_id, "Bram Jansen", "waitlisted")
    )
    async with backend.store.transaction() as repository:
        await repository.mark_cancelled(anna, "geen tijd")
        await repository.mark_cancelled(anna, "geen tijd")  # as it was: no longer so
        await repository.mark_cancelled(bram, "")
        cancelled = await repository.registration(anna.id)
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    assert await seats(backend, event_id) == (0, 0)


async def test_the_first_on_the_waiting_list_move_up_in_order(backend: Backend) -> None:
    event_id = await an_event(backend)
    _, bram, carla, _ = await added(
        backend,
        someone(event_id, "Anna de Vries"),
        someone(event_id, "Bram Jansen", "waitlisted"),
        someone(event_id, "Carla Smit", "waitlisted"),
        someone(event_id, "Dirk Bos", "waitlisted"),
    )
    async with backend.store.transaction() as repository:
        promoted = await repository.promote_first_waitlisted(event_id, 2)
        assert await repository.waitlist_position(carla) == 0
    assert names(promoted) == ["Bram Jansen", "Carla Smit"]
    assert {r.status for r in promoted} == {"confirmed"}
    assert [r.id for r in promoted] == [bram.id, carla.id]
    assert await seats(backend, event_id) == (3, 1)


async def test_a_cancelled_event_cancels_everyone_active_as_they_were(backend: Backend) -> None:
    event_id = await an_event(backend)
    anna, bram, carla = await added(
        backend,
        someone(event_id, "Anna de Vries"),
        someone(event_id, "Bram Jansen", "waitlisted"),
        someone(event_id, "Carla Smit"),
    )
    async with backend.store.transaction() as repository:
        await repository.mark_cancelled(carla, "")
        before = await repository.cancel_all_active(event_id, "event_cancelled")
        counts = await repository.status_counts(event_id)
    assert [(r.id, r.status) for r in before] == [(anna.id, "confirmed"), (bram.id, "waitlisted")]
    assert counts == {"confirmed": 0, "waitlisted": 0, "cancelled": 3, "checked_in": 0}
    assert await seats(backend, event_id) == (0, 0)


async def test_a_place_on_the_waiting_list_counts_only_those_still_waiting(
    backend: Backend,
) -> None:
    event_id = await an_event(backend)
    bram, carla, dirk = await added(
        backend,
        someone(event_id, "Bram Jansen", "waitlisted"),
        someone(event_id, "Carla Smit", "waitlisted"),
        someone(event_id, "Dirk Bos", "waitlisted"),
    )
    async with backend.store.transaction() as repository:
        assert await repository.waitlist_position(dirk) == 3
        await repository.mark_cancelled(bram, "")
        assert await repository.waitlist_position(dirk) == 2
        assert await repository.waitlist_position(carla) == 1


# -- check-in and lists ----------------------------------------------------------------------


async def test_a_check_in_happens_once(backend: Backend) -> None:
    event_id = await an_event(backend)
    [anna] = await added(backend, someone(event_id, "Anna de Vries"))
    async with backend.store.transaction() as repository:
        checked = await repository.mark_checked_in(anna.id, "Bureau STO")
        assert await repository.mark_checked_in(anna.id, "Bureau STO") is None
        assert await repository.mark_checked_in(uuid.uuid4(), "Bureau STO") is None
        counts = await repository.status_counts(event_id)
    assert checked is not None
    assert checked.checked_in_at is not None
    assert counts == {"confirmed": 1, "waitlisted": 0, "cancelled": 0, "checked_in": 1}


async def test_a_chosen_school_site_is_kept_until_the_school_is_corrected_to_another(
    backend: Backend,
) -> None:
    event_id = await an_event(backend, region_codes=("drenthe", "groningen"))
    at_site = someone(event_id, "Anna de Vries")
    at_site = dataclasses.replace(
        at_site,
        applicant=dataclasses.replace(
            at_site.applicant, organisation="Vakcollege (Emmen)", school_code="99ZG00"
        ),
    )
    [anna] = await added(backend, at_site)
    async with backend.store.transaction() as repository:
        terms = await repository.terms(event_id)
        renamed = await repository.correct(anna.id, "Anna Vries", "Vakcollege (Emmen)", "docent")
        moved = await repository.correct(anna.id, "Anna Vries", "Een andere school", "docent")
    assert terms is not None
    assert terms.region_codes == ("drenthe", "groningen")
    assert anna.applicant.school_code == "99ZG00"
    assert renamed is not None
    assert renamed.applicant.school_code == "99ZG00"  # the school itself unchanged
    assert moved is not None
    assert (moved.applicant.school_code, moved.applicant.organisation) == (
        None,
        "Een andere school",
    )


async def test_attendees_in_queue_order_filtered_by_status_region_and_role(
    backend: Backend,
) -> None:
    event_id = await an_event(backend)
    await added(
        backend,
        someone(event_id, "Anna de Vries", region="TW"),
        someone(event_id, "Bram Jansen", "waitlisted", region="TW"),
        someone(event_id, "Carla Smit", region="ZH", role="decaan"),
        someone(await an_event(backend), "Elders Ergens"),
    )
    async with backend.store.reading() as repository:
        every = await repository.attendees(event_id)
        confirmed = await repository.attendees(event_id, status="confirmed")
        twente = await repository.attendees(event_id, region_code="TW")
        deans = await repository.attendees(event_id, role="decaan")
        none = await repository.attendees(event_id, status="confirmed", region_code="XX")
    assert names(every) == ["Anna de Vries", "Bram Jansen", "Carla Smit"]
    assert names(confirmed) == ["Anna de Vries", "Carla Smit"]
    assert names(twente) == ["Anna de Vries", "Bram Jansen"]
    assert names(deans) == ["Carla Smit"]
    assert none == []


async def test_a_booker_sees_the_colleagues_of_every_form_they_sent(backend: Backend) -> None:
    event_id = await an_event(backend, capacity=None)
    first, second = uuid.uuid4(), uuid.uuid4()
    anna, bram, carla, _ = await added(
        backend,
        someone(event_id, "Anna de Vries", group=first),
        someone(event_id, "Bram Jansen", group=first),
        someone(event_id, "Carla Smit", group=second),
        someone(event_id, "Dirk Bos", group=uuid.uuid4()),
    )
    async with backend.store.transaction() as repository:
        await repository.record_booking(first, anna.id)
        await repository.record_booking(first, anna.id)
        await repository.record_booking(second, anna.id)
        assert names(await repository.booked_colleagues(anna.id)) == ["Bram Jansen", "Carla Smit"]
        assert await repository.booked_colleagues(bram.id) == []
        assert await repository.booked_colleagues(carla.id) == []


# -- privacy ---------------------------------------------------------------------------------


async def test_a_person_is_exported_then_erased_and_their_counts_stay(backend: Backend) -> None:
    address = f"fatima-{uuid.uuid4().hex[:6]}@school.nl"
    twente = await an_event(backend, title="Twente")
    delft = await an_event(backend, title="Delft", starts_in_days=8)
    first, second, _ = await added(
        backend,
        someone(twente, "Fatima el Amrani", email=address),
        someone(delft, "Fatima el Amrani", "waitlisted", email=address.upper()),
        someone(twente, "Anna de Vries"),
    )
    async with backend.store.transaction() as repository:
        records = await repository.person_records(address)
        erased = await repository.erase_person(address)
        after = await repository.person_records(address)
        kept = await repository.registration(first.id)
        counts = await repository.status_counts(twente)
    assert [(r["id"], r["event_title"], r["status"]) for r in records] == [
        (first.id, "Twente", "confirmed"),
        (second.id, "Delft", "waitlisted"),
    ]
    assert records[0]["email"] == address
    assert records[0]["profiles"] == ["PIE"]
    assert records[0]["confirmed_at"] is not None
    assert records[1]["confirmed_at"] is None
    assert set(erased) == {first.id, second.id}
    assert after == []
    assert kept is not None
    assert kept.erased
    assert (kept.applicant.name, kept.applicant.email, kept.status) == ("", "", "confirmed")
    assert counts["confirmed"] == 2


async def test_registrations_of_events_ended_before_the_cutoff_are_anonymised_in_batches(
    backend: Backend,
) -> None:
    long_ago = await an_event(backend, title="Lang geleden", starts_in_days=-200)
    recent = await an_event(backend, title="Vorige week", starts_in_days=-7)
    old_ones = await added(
        backend,
        someone(long_ago, "Anna de Vries"),
        someone(long_ago, "Bram Jansen", "waitlisted"),
        someone(long_ago, "Cem Yilmaz", "cancelled"),
    )
    [kept] = await added(backend, someone(recent, "Dirk Bakker"))
    cutoff = datetime.now(UTC) - timedelta(days=180)
    async with backend.store.transaction() as repository:
        assert len(await repository.data_keys([*old_ones, kept])) == 4
        first = await repository.anonymise_ended_before(cutoff, 2)
        second = await repository.anonymise_ended_before(cutoff, 2)
        third = await repository.anonymise_ended_before(cutoff, 2)
        rows = [await repository.registration(r.id) for r in (*old_ones, kept)]
        counts = await repository.status_counts(long_ago)
        keys = await repository.data_keys([r for r in rows if r is not None])
    assert [len(ids) for ids in first.values()] == [2]
    assert set(first) == set(second) == {long_ago}
    assert set(first[long_ago]) | set(second[long_ago]) == {r.id for r in old_ones}
    assert third == {}
    *anonymised, untouched = rows
    assert all(r is not None and r.erased for r in anonymised)
    assert all(
        r is not None and (r.applicant.name, r.applicant.email) == ("", "") for r in anonymised
    )
    assert [r.status for r in anonymised if r is not None] == [
        "confirmed",
        "waitlisted",
        "cancelled",
    ]
    assert (counts["confirmed"], counts["waitlisted"]) == (1, 1)
    assert untouched is not None
    assert untouched.applicant.name == "Dirk Bakker"
    assert set(keys) == {kept.id}  # the anonymised ones' keys are forgotten


# -- messages --------------------------------------------------------------------------------


def a_message() -> Message:
    return PersonErased.create(
        email_sha256="0" * 64, registration_ids=(), erased_at=datetime.now(UTC)
    )


async def test_messages_commit_with_the_change_or_not_at_all(backend: Backend) -> None:
    kept, lost = a_message(), a_message()
    async with backend.store.transaction() as repository:
        await repository.add_messages([kept])

    async def add_then_fail() -> None:
        async with backend.store.transaction() as repository:
            await repository.add_messages([lost])
            raise RuntimeError("stopped halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        await add_then_fail()
    assert await backend.outbox() == [kept.message_id]


async def test_attendance_from_analytics_is_kept_per_registrant_and_replaced_whole(
    backend: Backend,
) -> None:
    unknown = uuid.uuid4()
    live = Attendance(unknown, "live", True, 42.0, 0.0)
    async with backend.store.transaction() as repository:
        assert await repository.attendance(unknown) is None
        await repository.save_attendance(live)
    async with backend.store.reading() as repository:
        assert await repository.attendance(unknown) == live
    later = Attendance(unknown, "live", True, 42.0, 13.0)
    async with backend.store.transaction() as repository:
        await repository.save_attendance(later)
        assert await repository.attendance(unknown) == later
