"""What happens to a registration after its sign-up, specified on the in-memory repository
(the contract test holds it to PostgreSQL): cancelling and the waiting list, the event's own
changes, check-in, erasure. Each outcome is read where the other services read it: the
messages the use case left in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sto_registrations.domain import (
    Applicant,
    CheckInRefused,
    Registration,
    RegistrationUnknown,
)
from sto_registrations.repository import (
    InMemoryRegistrations,
    RegistrationsRepository,
    RegistrationsState,
)
from sto_registrations.service.lifecycle import RegistrationLifecycle
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationsAnonymised,
    RegistrationStatus,
)
from stolive_shared.links import PersonalLinks
from stolive_shared.privacy.sealing import open_sealed
from stolive_shared.store import InMemoryStore
from stolive_shared.urls import PublicUrls

STARTS = datetime(2026, 12, 10, 14, 0, tzinfo=UTC)


class Office:
    """The use cases on a fresh in-memory store, with ways to set the scene."""

    def __init__(self) -> None:
        self.store: InMemoryStore[RegistrationsState, RegistrationsRepository] = InMemoryStore(
            RegistrationsState(), InMemoryRegistrations
        )
        self.lifecycle = RegistrationLifecycle(
            self.store, PersonalLinks("unit-test-secret", PublicUrls("https://sto.test"))
        )

    async def event(self, event_id: uuid.UUID | None = None, **changes: Any) -> EventSnapshot:
        fields: dict[str, Any] = {
            "event_id": event_id or uuid.uuid4(),
            "revision": 1,
            "kind": "regional_meeting",
            "status": "published",
            "title": "Regiobijeenkomst Twente",
            "starts_at": STARTS,
            "ends_at": STARTS + timedelta(hours=3),
            "capacity": 1,
        }
        snapshot = EventSnapshot(**fields | changes)
        async with self.store.transaction() as registrations:
            await self.lifecycle.apply_event(registrations, snapshot)
        return snapshot

    async def registered(
        self, event: EventSnapshot, name: str, status: RegistrationStatus = "confirmed"
    ) -> Registration:
        registration = Registration(
            id=uuid.uuid4(),
            event_id=event.event_id,
            status=status,
            applicant=Applicant(
                name=name,
                email=f"{name.split()[0].lower()}@school.nl",
                organisation="Het Techniek College",
                role="docent",
                region_code="TW",
            ),
            viewer_id=f"v_{uuid.uuid4().hex[:24]}",
            queue_number=0,
            created_at=STARTS - timedelta(days=7),
        )
        async with self.store.transaction() as registrations:
            return await registrations.add(registration)

    def sent(self) -> list[str]:
        """What went out, as ``type: person`` (the name as the sealed contact tells it to
        whoever holds the registration's key), in order."""
        said = []
        for message in self.store.state.outbox:
            about = getattr(message, "registration", None)
            if about is None:
                said.append(message.type)
                continue
            key = self.store.state.keys.get(about.registration_id)
            name = open_sealed(key, about.contact).name if key and about.contact else "?"
            said.append(f"{message.type}: {name}")
        return said


@pytest.fixture
def office() -> Office:
    return Office()


class TestCancelling:
    async def test_a_freed_seat_goes_to_the_first_on_the_waiting_list_in_the_same_commit(
        self, office: Office
    ) -> None:
        event = await office.event(capacity=1)
        anna = await office.registered(event, "Anna de Vries")
        await office.registered(event, "Bram Jansen", "waitlisted")
        await office.registered(event, "Carla Smit", "waitlisted")
        await office.lifecycle.cancel(anna.id, "ziek")
        assert office.sent() == [
            "registration.cancelled: Anna de Vries",
            "registration.promoted: Bram Jansen",
        ]
        cancelled = office.store.state.outbox[0]
        assert isinstance(cancelled, RegistrationCancelled)
        assert (cancelled.previous_status, cancelled.reason) == ("confirmed", "ziek")

    async def test_leaving_the_waiting_list_frees_no_seat(self, office: Office) -> None:
        event = await office.event(capacity=1)
        await office.registered(event, "Anna de Vries")
        bram = await office.registered(event, "Bram Jansen", "waitlisted")
        await office.registered(event, "Carla Smit", "waitlisted")
        await office.lifecycle.cancel(bram.id, "left_waitlist")
        assert office.sent() == ["registration.cancelled: Bram Jansen"]

    async def test_cancelling_twice_tells_the_world_once(self, office: Office) -> None:
        event = await office.event()
        anna = await office.registered(event, "Anna de Vries")
        await office.lifecycle.cancel(anna.id)
        again = await office.lifecycle.cancel(anna.id)
        assert again.status == "cancelled"
        assert office.sent() == ["registration.cancelled: Anna de Vries"]

    async def test_an_unknown_registration_cannot_be_cancelled(self, office: Office) -> None:
        with pytest.raises(RegistrationUnknown):
            await office.lifecycle.cancel(uuid.uuid4())

    async def test_a_booker_cancels_their_own_colleagues_and_no_one_else(
        self, office: Office
    ) -> None:
        event = await office.event(capacity=None)
        anna = await office.registered(event, "Anna de Vries")
        stranger = await office.registered(event, "Erik Vos")
        with pytest.raises(RegistrationUnknown):
            await office.lifecycle.cancel_colleague(anna.id, stranger.id)
        assert office.sent() == []


class TestFollowingTheEvent:
    async def test_a_cancelled_event_cancels_every_registration_with_its_reason(
        self, office: Office
    ) -> None:
        event = await office.event(capacity=1)
        await office.registered(event, "Anna de Vries")
        await office.registered(event, "Bram Jansen", "waitlisted")
        await office.event(event.event_id, revision=2, status="cancelled")
        assert office.sent() == [
            "registration.cancelled: Anna de Vries",
            "registration.cancelled: Bram Jansen",
        ]
        reasons = {
            m.reason for m in office.store.state.outbox if isinstance(m, RegistrationCancelled)
        }
        assert reasons == {"event_cancelled"}

    async def test_more_seats_move_the_waiting_list_up(self, office: Office) -> None:
        event = await office.event(capacity=1)
        await office.registered(event, "Anna de Vries")
        await office.registered(event, "Bram Jansen", "waitlisted")
        await office.registered(event, "Carla Smit", "waitlisted")
        await office.registered(event, "Dirk Bos", "waitlisted")
        await office.event(event.event_id, revision=2, capacity=3)
        assert office.sent() == [
            "registration.promoted: Bram Jansen",
            "registration.promoted: Carla Smit",
        ]

    async def test_fewer_seats_take_no_seat_from_anyone(self, office: Office) -> None:
        event = await office.event(capacity=2)
        await office.registered(event, "Anna de Vries")
        await office.registered(event, "Bram Jansen")
        await office.event(event.event_id, revision=2, capacity=1)
        assert await office.lifecycle.counts(event.event_id) == {
            "confirmed": 2,
            "waitlisted": 0,
            "cancelled": 0,
            "checked_in": 0,
        }
        assert office.sent() == []

    async def test_an_older_revision_arriving_late_changes_nothing(self, office: Office) -> None:
        event = await office.event(capacity=1)
        await office.registered(event, "Anna de Vries")
        await office.registered(event, "Bram Jansen", "waitlisted")
        await office.event(event.event_id, revision=3, capacity=1)
        await office.event(event.event_id, revision=2, status="cancelled")
        assert office.sent() == []
        assert (await office.lifecycle.event_terms(event.event_id)).revision == 3


class TestCheckingIn:
    async def test_a_seated_person_is_checked_in_once(self, office: Office) -> None:
        event = await office.event()
        anna = await office.registered(event, "Anna de Vries")
        first = await office.lifecycle.check_in(anna.id, "Bureau STO")
        second = await office.lifecycle.check_in(anna.id, "Bureau STO")
        assert first.checked_in_at is not None
        assert second.checked_in_at == first.checked_in_at
        assert office.sent() == ["registration.checked_in: Anna de Vries"]
        [checked] = office.store.state.outbox
        assert isinstance(checked, RegistrationCheckedIn)
        assert checked.checked_in_at == first.checked_in_at

    @pytest.mark.parametrize(
        ("status", "refusal"),
        [("waitlisted", "wachtlijst"), ("cancelled", "geannuleerd")],
    )
    async def test_no_check_in_without_a_seat(
        self, office: Office, status: RegistrationStatus, refusal: str
    ) -> None:
        event = await office.event(capacity=None)
        person = await office.registered(event, "Bram Jansen", status)
        with pytest.raises(CheckInRefused, match=refusal):
            await office.lifecycle.check_in(person.id, "Bureau STO")
        assert office.sent() == []

    async def test_a_webinar_has_no_check_in(self, office: Office) -> None:
        event = await office.event(kind="webinar", capacity=None)
        anna = await office.registered(event, "Anna de Vries")
        with pytest.raises(CheckInRefused, match="op locatie"):
            await office.lifecycle.check_in(anna.id, "Bureau STO")


class TestPrivacy:
    async def test_an_erasure_is_told_to_every_service_even_when_nothing_is_held_here(
        self, office: Office
    ) -> None:
        assert await office.lifecycle.erase_person("Niemand@School.nl") == []
        [erased] = office.store.state.outbox
        assert isinstance(erased, PersonErased)
        assert erased.registration_ids == ()

    async def test_an_erased_person_is_gone_from_the_export_and_their_seat_stays_counted(
        self, office: Office
    ) -> None:
        event = await office.event()
        anna = await office.registered(event, "Anna de Vries")
        exported = await office.lifecycle.person_export("ANNA@school.nl")
        assert [r["id"] for r in exported["registrations"]] == [anna.id]
        assert await office.lifecycle.erase_person("anna@school.nl") == [anna.id]
        assert (await office.lifecycle.person_export("anna@school.nl"))["registrations"] == []
        assert (await office.lifecycle.counts(event.event_id))["confirmed"] == 1
        assert office.sent()[-1] == "person.erased"


class TestRetention:
    """Registrations keep their personal fields ``registration_retention_days`` after their
    event ended; then they are anonymised, and every service told once per event."""

    RETENTION = timedelta(days=180)

    def on_day(self, office: Office, days_after_start: float) -> RegistrationLifecycle:
        return RegistrationLifecycle(
            office.store,
            office.lifecycle.links,
            clock=lambda: STARTS + timedelta(days=days_after_start),
        )

    async def test_registrations_past_their_retention_are_anonymised_and_announced_per_event(
        self, office: Office
    ) -> None:
        twente = await office.event(capacity=None)
        delft = await office.event(capacity=None, title="Regiobijeenkomst Delft")
        anna = await office.registered(twente, "Anna de Vries")
        bram = await office.registered(twente, "Bram Jansen")
        cem = await office.registered(delft, "Cem Yilmaz")
        later = self.on_day(office, 181)
        assert await later.anonymise_expired(self.RETENTION, 500) == 3
        told = {
            message.event_id: set(message.registration_ids)
            for message in office.store.state.outbox
            if isinstance(message, RegistrationsAnonymised)
        }
        assert told == {twente.event_id: {anna.id, bram.id}, delft.event_id: {cem.id}}
        assert (await later.person_export("anna@school.nl"))["registrations"] == []
        assert (await later.counts(twente.event_id))["confirmed"] == 2
        assert anna.id not in office.store.state.keys

        sent = len(office.store.state.outbox)
        assert await later.anonymise_expired(self.RETENTION, 500) == 0
        assert len(office.store.state.outbox) == sent

    async def test_nothing_is_anonymised_before_its_time(self, office: Office) -> None:
        twente = await office.event(capacity=None)
        anna = await office.registered(twente, "Anna de Vries")
        assert await self.on_day(office, 180).anonymise_expired(self.RETENTION, 500) == 0
        exported = await office.lifecycle.person_export("anna@school.nl")
        assert [r["id"] for r in exported["registrations"]] == [anna.id]
        assert not any(isinstance(m, RegistrationsAnonymised) for m in office.store.state.outbox)

    async def test_a_batch_takes_no_more_than_its_limit(self, office: Office) -> None:
        twente = await office.event(capacity=None)
        for name in ("Anna de Vries", "Bram Jansen", "Cem Yilmaz"):
            await office.registered(twente, name)
        later = self.on_day(office, 365)
        assert [await later.anonymise_expired(self.RETENTION, 2) for _ in range(3)] == [2, 1, 0]


class RefusingOutbox(InMemoryRegistrations):
    async def add_messages(self, messages: Sequence[Message]) -> None:
        raise RuntimeError(f"the outbox refused {len(messages)} messages")


async def test_a_cancellation_whose_messages_cannot_be_written_does_not_happen(
    office: Office,
) -> None:
    event = await office.event()
    anna = await office.registered(event, "Anna de Vries")
    refusing: InMemoryStore[RegistrationsState, RegistrationsRepository] = InMemoryStore(
        office.store.state, RefusingOutbox
    )
    with pytest.raises(RuntimeError, match="refused"):
        await RegistrationLifecycle(refusing, office.lifecycle.links).cancel(anna.id)
    registration, _ = await RegistrationLifecycle(refusing, office.lifecycle.links).get(anna.id)
    assert registration.status == "confirmed"


async def test_no_message_carries_a_contact_in_clear(office: Office) -> None:
    event = await office.event(capacity=1)
    anna = await office.registered(event, "Anna de Vries")
    await office.registered(event, "Bram Jansen", "waitlisted")
    await office.lifecycle.cancel(anna.id)
    for message in office.store.state.outbox:
        raw = message.model_dump_json()
        assert "Anna" not in raw
        assert "Bram" not in raw
        assert "@school.nl" not in raw


async def test_an_erased_persons_later_messages_carry_no_contact(office: Office) -> None:
    event = await office.event(capacity=None)
    anna = await office.registered(event, "Anna de Vries")
    await office.lifecycle.erase_person("anna@school.nl")
    assert anna.id not in office.store.state.keys
    await office.event(event.event_id, revision=2, status="cancelled")
    [cancelled] = [m for m in office.store.state.outbox if isinstance(m, RegistrationCancelled)]
    assert cancelled.registration.contact is None
