"""What organisers do to registrations by hand (the registrations roles' use cases), specified
on the in-memory repository: each does what the person's own action would (the same
messages in the outbox), refuses in Dutch what cannot be done, and leaves its audit note in
the same transaction, naming the registration by id only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sto_registrations.domain import (
    ActionRefused,
    Applicant,
    AuditNote,
    Registration,
    RegistrationUnknown,
    SignUpRefused,
)
from sto_registrations.repository import (
    InMemoryRegistrations,
    RegistrationsRepository,
    RegistrationsState,
)
from sto_registrations.service.by_hand import ByHand, EntryInvalid
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import RegistrationStatus
from stolive_shared.links import PersonalLinks
from stolive_shared.organisers.roles import Organiser
from stolive_shared.store import InMemoryStore
from stolive_shared.urls import PublicUrls

STARTS = datetime(2026, 12, 10, 14, 0, tzinfo=UTC)
NOW = STARTS - timedelta(days=3)
LEADER = Organiser(7, "rita@sto.example", "Rita", "regional", regions=frozenset({"twente"}))


class Desk:
    """The by-hand use cases on a fresh in-memory store."""

    def __init__(self) -> None:
        self.store: InMemoryStore[RegistrationsState, RegistrationsRepository] = InMemoryStore(
            RegistrationsState(), InMemoryRegistrations
        )
        self.desk = ByHand(
            self.store,
            PersonalLinks("unit-test-secret", PublicUrls("https://sto.test")),
            clock=lambda: NOW,
        )

    async def event(self, **changes: Any) -> EventSnapshot:
        fields: dict[str, Any] = {
            "event_id": uuid.uuid4(),
            "revision": 1,
            "kind": "regional_meeting",
            "status": "published",
            "title": "Regiobijeenkomst Twente",
            "starts_at": STARTS,
            "ends_at": STARTS + timedelta(hours=3),
            "capacity": 1,
            "waitlist_enabled": True,
        }
        snapshot = EventSnapshot(**fields | changes)
        async with self.store.transaction() as registrations:
            await self.desk.apply_event(registrations, snapshot)
        return snapshot

    async def add(self, event: EventSnapshot, name: str) -> Registration:
        return await self.desk.add_by_hand(event.event_id, person(name), LEADER)

    def sent(self) -> list[str]:
        return [message.type for message in self.store.state.outbox]

    def audit(self) -> list[AuditNote]:
        return self.store.state.audit

    def statuses(self) -> dict[str, RegistrationStatus]:
        return {
            row.registration.applicant.name: row.registration.status
            for row in self.store.state.registrations.values()
        }


def person(name: str, role: str = "docent") -> Applicant:
    return Applicant(
        name=name,
        email=f"  {name.split()[0].upper()}@School.nl ",
        organisation="Het Techniek College",
        role=role,
        region_code="twente",
    )


@pytest.fixture
def desk() -> Desk:
    return Desk()


async def test_a_person_added_by_hand_gets_a_seat_then_the_waiting_list_as_a_sign_up(
    desk: Desk,
) -> None:
    event = await desk.event(registration_closes_at=NOW - timedelta(days=1))

    anna = await desk.add(event, "Anna Bos")
    bert = await desk.add(event, "Bert Kok")

    assert (anna.status, bert.status) == ("confirmed", "waitlisted")
    assert anna.applicant.email == "anna@school.nl"  # normalised as a sign-up's
    assert desk.sent() == ["registration.confirmed", "registration.waitlisted"]
    assert [(n.action, n.subject, n.event_id) for n in desk.audit()] == [
        ("registration_added", f"registration:{anna.id}", event.event_id),
        ("registration_added", f"registration:{bert.id}", event.event_id),
    ]


async def test_adding_by_hand_refuses_a_second_registration_bad_input_and_a_past_event(
    desk: Desk,
) -> None:
    event = await desk.event()
    over = await desk.event(starts_at=NOW - timedelta(hours=5), ends_at=NOW - timedelta(hours=2))
    full = await desk.event(waitlist_enabled=False)
    await desk.add(event, "Anna Bos")
    await desk.add(full, "Cor Mol")

    with pytest.raises(ActionRefused, match="al aangemeld"):
        await desk.add(event, "Anna Bos")
    with pytest.raises(EntryInvalid) as invalid:
        await desk.desk.add_by_hand(
            event.event_id, Applicant("", "geen-adres", "", "piloot", None), LEADER
        )
    with pytest.raises(SignUpRefused, match="voorbij"):
        await desk.add(over, "Dirk Bos")
    with pytest.raises(SignUpRefused, match="vol"):
        await desk.add(full, "Eva Bos")

    assert set(invalid.value.problems) == {"name", "email", "role"}
    assert invalid.value.problems["name"].startswith("Vul de naam in")
    assert len(desk.audit()) == 2  # the two that were added


async def test_a_waiting_person_is_placed_only_in_a_free_seat_or_above_capacity_when_asked(
    desk: Desk,
) -> None:
    event = await desk.event()
    await desk.add(event, "Anna Bos")
    bert = await desk.add(event, "Bert Kok")

    with pytest.raises(ActionRefused, match="geen plaats vrij"):
        await desk.desk.promote_by_hand(event.event_id, bert.id, LEADER)
    placed = await desk.desk.promote_by_hand(event.event_id, bert.id, LEADER, over_capacity=True)
    with pytest.raises(ActionRefused, match="niet \\(meer\\) op de wachtlijst"):
        await desk.desk.promote_by_hand(event.event_id, bert.id, LEADER)

    assert placed.status == "confirmed"
    assert desk.store.state.events[event.event_id].confirmed == 2
    assert desk.store.state.events[event.event_id].waitlisted == 0
    assert desk.sent()[-1] == "registration.promoted"
    assert (desk.audit()[-1].action, dict(desk.audit()[-1].detail)) == (
        "registration_promoted",
        {"over_capacity": True},
    )


async def test_a_cancellation_by_hand_frees_the_seat_for_the_first_waiting(desk: Desk) -> None:
    event = await desk.event()
    anna = await desk.add(event, "Anna Bos")
    await desk.add(event, "Bert Kok")

    cancelled = await desk.desk.cancel_by_hand(event.event_id, anna.id, LEADER)
    with pytest.raises(ActionRefused, match="al geannuleerd"):
        await desk.desk.cancel_by_hand(event.event_id, anna.id, LEADER)

    assert cancelled.status == "cancelled"
    assert desk.statuses() == {"Anna Bos": "cancelled", "Bert Kok": "confirmed"}
    assert desk.sent()[-2:] == ["registration.cancelled", "registration.promoted"]
    assert dict(desk.audit()[-1].detail) == {"previous_status": "confirmed"}


async def test_corrections_resends_and_undone_check_ins_are_audited_by_id(desk: Desk) -> None:
    event = await desk.event()
    anna = await desk.add(event, "Anna Bos")
    await desk.desk.check_in(anna.id, LEADER, via="list")

    fixed = await desk.desk.correct_by_hand(
        event.event_id, anna.id, LEADER, name="Anna Bos-Smit", organisation=" HTC ", role="mbo"
    )
    with pytest.raises(EntryInvalid):
        await desk.desk.correct_by_hand(
            event.event_id, anna.id, LEADER, name="Anna\r\nBcc: x", organisation="", role="mbo"
        )
    await desk.desk.resend_confirmation(event.event_id, anna.id, LEADER)
    undone = await desk.desk.undo_check_in(event.event_id, anna.id, LEADER)
    with pytest.raises(ActionRefused, match="niet ingecheckt"):
        await desk.desk.undo_check_in(event.event_id, anna.id, LEADER)

    assert (fixed.applicant.name, fixed.applicant.organisation) == ("Anna Bos-Smit", "HTC")
    assert fixed.applicant.email == anna.applicant.email
    assert undone.checked_in_at is None
    assert desk.store.state.registrations[anna.id].checked_in_by is None
    assert desk.sent()[-4:] == [
        "registration.checked_in",
        "registration.corrected",
        "registration.confirmation_resent",
        "registration.check_in_undone",
    ]
    notes = [(n.action, dict(n.detail)) for n in desk.audit()[1:]]
    assert notes == [
        ("check_in", {"via": "list"}),
        ("registration_corrected", {"fields": ["name", "organisation", "role"]}),
        ("confirmation_resent", {}),
        ("check_in_undone", {}),
    ]
    assert {n.subject for n in desk.audit()} == {f"registration:{anna.id}"}


async def test_a_registration_of_another_event_is_unknown_to_every_action(desk: Desk) -> None:
    event = await desk.event()
    other = await desk.event()
    anna = await desk.add(event, "Anna Bos")

    for action in (
        desk.desk.cancel_by_hand(other.event_id, anna.id, LEADER),
        desk.desk.promote_by_hand(other.event_id, anna.id, LEADER),
        desk.desk.resend_confirmation(other.event_id, anna.id, LEADER),
        desk.desk.undo_check_in(other.event_id, anna.id, LEADER),
        desk.desk.correct_by_hand(
            other.event_id, anna.id, LEADER, name="X", organisation="", role="mbo"
        ),
    ):
        with pytest.raises(RegistrationUnknown):
            await action

    assert desk.statuses() == {"Anna Bos": "confirmed"}
    assert len(desk.audit()) == 1
