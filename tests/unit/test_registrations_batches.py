"""How a batch of sign-ups arriving together is decided: first come, first served."""

from __future__ import annotations

import uuid

import pytest

from sto_registrations import domain
from sto_registrations.domain import EventTerms, SeatState
from tests.unit.test_registration_rules import NOW, terms


def event(**changes: object) -> EventTerms:
    """A regional meeting with 2 seats and a waiting list."""
    return terms(**{"revision": 1, "title": "Regiobijeenkomst Drenthe", "capacity": 2, **changes})


def seats(terms: EventTerms, confirmed: int = 0, waitlisted: int = 0) -> dict[uuid.UUID, SeatState]:
    return {terms.id: SeatState(terms, confirmed, waitlisted)}


def test_the_earliest_sign_ups_get_the_seats_and_the_rest_queue_in_order() -> None:
    terms = event(capacity=2)
    wanted = [(terms.id, f"p{n}@school.nl") for n in range(4)]

    plan, changes = domain.plan_sign_ups(wanted, seats(terms, waitlisted=3), set(), NOW)

    assert [p.status for p in plan] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert [p.waitlist_position for p in plan[2:]] == [4, 5]
    assert (changes[terms.id].confirmed, changes[terms.id].waitlisted) == (2, 2)


def test_a_lowered_capacity_gives_no_seat_and_takes_none() -> None:
    terms = event(capacity=10)

    plan, changes = domain.plan_sign_ups(
        [(terms.id, "late@school.nl")], seats(terms, confirmed=12), set(), NOW
    )

    assert plan[0].status == "waitlisted"
    assert changes[terms.id].confirmed == 0


def test_without_a_waiting_list_the_rest_of_a_batch_is_refused_with_409() -> None:
    terms = event(capacity=1, waitlist_enabled=False)
    wanted = [(terms.id, "a@school.nl"), (terms.id, "b@school.nl")]

    plan, changes = domain.plan_sign_ups(wanted, seats(terms), set(), NOW)

    assert plan[0].status == "confirmed"
    assert plan[1].refused is not None
    assert plan[1].refused.status == 409
    assert changes[terms.id].confirmed == 1


def test_the_same_person_twice_in_one_batch_gets_the_first_answer() -> None:
    terms = event()
    wanted = [(terms.id, "a@school.nl"), (terms.id, "a@school.nl")]

    plan, changes = domain.plan_sign_ups(wanted, seats(terms), set(), NOW)

    assert plan[0].status == "confirmed"
    assert plan[1].same_as == 0
    assert changes[terms.id].confirmed == 1


def test_someone_already_registered_takes_no_second_seat() -> None:
    terms = event()
    key = (terms.id, "a@school.nl")

    plan, changes = domain.plan_sign_ups([key], seats(terms), {key}, NOW)

    assert plan[0].existing
    assert terms.id not in changes


def test_someone_already_registered_hears_what_a_new_sign_up_would_hear() -> None:
    """A full event without a waiting list refuses both: the answer never tells whether the
    address was registered; with a waiting list both are accepted (and told by e-mail)."""
    full = event(capacity=1, waitlist_enabled=False)
    registered, new = (full.id, "a@school.nl"), (full.id, "b@school.nl")

    plan, changes = domain.plan_sign_ups(
        [registered, new], seats(full, confirmed=1), {registered}, NOW
    )

    assert [p.refused and (p.refused.status, str(p.refused)) for p in plan] == [
        (409, "Dit evenement is vol."),
        (409, "Dit evenement is vol."),
    ]
    assert full.id not in changes or changes[full.id].confirmed == 0

    waiting = event(capacity=1)
    again, first = (waiting.id, "a@school.nl"), (waiting.id, "b@school.nl")
    plan, _ = domain.plan_sign_ups([again, first], seats(waiting, confirmed=1), {again}, NOW)
    assert plan[0].existing
    assert plan[1].status == "waitlisted"


def test_a_closed_event_and_an_unknown_one_are_answered_per_sign_up() -> None:
    closed = event(status="cancelled")
    open_ = event()
    unknown = uuid.uuid4()
    wanted = [(closed.id, "a@school.nl"), (unknown, "a@school.nl"), (open_.id, "a@school.nl")]

    plan, _ = domain.plan_sign_ups(wanted, {**seats(closed), **seats(open_)}, set(), NOW)

    assert plan[0].refused is not None
    assert plan[0].refused.status == 410
    assert plan[1].unknown_event
    assert plan[2].status == "confirmed"


def test_events_in_one_batch_keep_their_own_seats() -> None:
    small, large = event(capacity=1), event(capacity=None)
    wanted = [(small.id, "a@x.nl"), (large.id, "b@x.nl"), (small.id, "c@x.nl")]

    plan, _ = domain.plan_sign_ups(wanted, {**seats(small), **seats(large)}, set(), NOW)

    assert [p.status for p in plan] == ["confirmed", "confirmed", "waitlisted"]


@pytest.mark.parametrize(
    ("capacity", "confirmed", "wanted", "granted"),
    [(None, 500, 7, 7), (10, 4, 3, 3), (10, 9, 3, 1), (10, 10, 3, 0), (10, 14, 3, 0)],
)
def test_seats_granted_never_pass_the_capacity(
    capacity: int | None, confirmed: int, wanted: int, granted: int
) -> None:
    assert domain.seats_to_grant(capacity, confirmed, wanted) == granted


def test_check_in_is_for_confirmed_people_at_physical_meetings() -> None:
    assert domain.check_in_refusal(event(), "confirmed") is None
    assert "locatie" in str(domain.check_in_refusal(event(kind="webinar"), "confirmed"))
    assert "wachtlijst" in str(domain.check_in_refusal(event(), "waitlisted"))
    assert "geannuleerd" in str(domain.check_in_refusal(event(), "cancelled"))


def test_a_group_may_hold_ten_colleagues_each_with_their_own_address() -> None:
    def person(n: int) -> domain.Applicant:
        return domain.Applicant(f"Docent {n}", f"d{n}@school.nl", "Esdal", "docent", None)

    assert domain.group_problems([person(n) for n in range(11)]) == {}
    assert "colleagues" in domain.group_problems([person(n) for n in range(12)])[0]
    twice = domain.group_problems([person(1), person(2), person(1)])
    assert twice == {2: {"email": "Dit e-mailadres staat al in het formulier."}}


def test_an_organisation_with_a_line_break_is_refused() -> None:
    problems = domain.applicant_problems(
        domain.Applicant("Anna", "anna@school.nl", "School\nBcc: x@y.nl", "docent", None)
    )
    assert problems == {"organisation": "De naam van je organisatie past op één regel."}


def test_a_unicode_line_separator_in_a_name_is_refused_too() -> None:
    problems = domain.applicant_problems(
        domain.Applicant("Anna\u2028de Vries", "anna@school.nl", "", "docent", None)
    )
    assert problems == {"name": "Een naam past op één regel."}


def test_an_erased_person_is_named_by_a_digest_of_the_normalised_address() -> None:
    assert domain.email_digest(" Anna@School.NL ") == domain.email_digest("anna@school.nl")
    assert len(domain.email_digest("anna@school.nl")) == 64


def test_control_characters_are_refused_in_names_addresses_and_regions() -> None:
    problems = domain.applicant_problems(
        domain.Applicant("Nul\x00Byte", "a\x00b@school.nl", "Tab\tSchool", "docent", "reg\x01")
    )
    assert set(problems) == {"name", "email", "organisation", "region_code"}


def test_the_api_offers_exactly_the_programme_s_roles_and_profiles() -> None:
    from typing import get_args

    from sto_registrations.api.schemas import Profile, Role
    from stolive_shared.programme import PROFILES, ROLES

    assert set(get_args(Role)) == set(ROLES)
    assert set(get_args(Profile)) == set(PROFILES)
