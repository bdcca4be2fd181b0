"""The registrations service's rules: who may sign up, and what the outcome is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sto_registrations import domain
from sto_registrations.domain import Applicant, EventTerms, SignUpRefused

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def terms(**changes: object) -> EventTerms:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "revision": 2,
        "kind": "regional_meeting",
        "status": "published",
        "title": "Regiobijeenkomst",
        "starts_at": NOW + timedelta(days=3),
        "ends_at": NOW + timedelta(days=3, hours=3),
        "capacity": 50,
        "waitlist_enabled": True,
        "registration_opens_at": None,
        "registration_closes_at": None,
    }
    fields.update(changes)
    return EventTerms(**fields)  # type: ignore[arg-type]


def applicant(**changes: object) -> Applicant:
    fields: dict[str, object] = {
        "name": "Anna de Vries",
        "email": "anna@school.nl",
        "organisation": "Dollard College",
        "role": "docent",
        "region_code": None,
    }
    fields.update(changes)
    return Applicant(**fields)  # type: ignore[arg-type]


def test_a_granted_seat_confirms() -> None:
    assert domain.outcome(terms(), seat_granted=True) == "confirmed"


def test_no_seat_puts_you_on_the_waiting_list_when_the_event_keeps_one() -> None:
    assert domain.outcome(terms(), seat_granted=False) == "waitlisted"


def test_no_seat_and_no_waiting_list_is_full_409() -> None:
    with pytest.raises(SignUpRefused) as refused:
        domain.outcome(terms(waitlist_enabled=False), seat_granted=False)
    assert refused.value.status == 409


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "cancelled"}, "geannuleerd"),
        ({"status": "ended"}, "voorbij"),
        ({"status": "draft"}, "niet mogelijk"),
        ({"registration_opens_at": NOW + timedelta(hours=1)}, "nog niet geopend"),
        ({"registration_closes_at": NOW - timedelta(hours=1)}, "gesloten"),
    ],
)
def test_closed_sign_up_is_refused_with_410(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(SignUpRefused, match=reason) as refused:
        domain.check_open(terms(**changes), NOW)
    assert refused.value.status == 410


def test_a_live_webinar_still_takes_sign_ups() -> None:
    domain.check_open(terms(status="live"), NOW)


def test_a_good_applicant_has_no_problems() -> None:
    assert domain.applicant_problems(applicant()) == {}


def test_field_problems_are_explained_in_dutch() -> None:
    problems = domain.applicant_problems(
        applicant(name="", email="geen-adres", role="koning", profiles=("XYZ",))
    )
    assert problems == {
        "name": "Vul je naam in.",
        "email": "Vul een geldig e-mailadres in, bijvoorbeeld naam@school.nl.",
        "role": "Kies je rol.",
        "profiles": "Kies alleen profielen uit de lijst.",
    }


def test_a_line_break_in_a_name_is_refused() -> None:
    assert "name" in domain.applicant_problems(applicant(name="Anna\r\nBcc: x@y.nl"))


def test_emails_compare_case_insensitively() -> None:
    assert domain.normalise_email("  Anna@School.NL ") == "anna@school.nl"


class TestWhatTheAgendaSaysAboutPlaces:
    """One definition of places left, for the agenda and the form alike; the form is offered
    exactly where a sign-up can be accepted."""

    def places(self, confirmed: int, **changes: object) -> domain.Availability:
        return domain.availability(domain.SeatState(terms(**changes), confirmed, 0), NOW)

    def test_plenty_of_places_says_nothing_more(self) -> None:
        assert self.places(30) == domain.Availability("open", places_left=20)
        assert self.places(30).form_offered

    def test_ten_places_or_fewer_are_counted(self) -> None:
        assert self.places(40) == domain.Availability("few", places_left=10)
        assert self.places(49) == domain.Availability("few", places_left=1)

    def test_full_with_a_waiting_list_still_offers_the_form(self) -> None:
        full = self.places(50)
        assert (full.kind, full.form_offered) == ("waitlist", True)

    def test_full_without_a_waiting_list_offers_no_form(self) -> None:
        full = self.places(50, waitlist_enabled=False)
        assert (full.kind, full.form_offered) == ("full", False)

    def test_a_webinar_without_a_cap_is_always_open(self) -> None:
        assert self.places(5_000, capacity=None, kind="webinar").kind == "open"

    def test_before_the_window_opens_it_says_when(self) -> None:
        opens = NOW + timedelta(days=1)
        early = self.places(0, registration_opens_at=opens)
        assert (early.kind, early.opens_at, early.form_offered) == ("not_yet", opens, False)

    @pytest.mark.parametrize(
        "changes",
        [
            {"registration_closes_at": NOW - timedelta(minutes=1)},
            {"status": "cancelled"},
            {"ends_at": NOW - timedelta(minutes=1)},
        ],
        ids=["window closed", "cancelled", "over"],
    )
    def test_closed_offers_no_form(self, changes: dict[str, object]) -> None:
        closed = self.places(0, **changes)
        assert (closed.kind, closed.form_offered) == ("closed", False)
