"""School sites on the sign-up form, as specifications: which sites the form lists, what a
chosen site means for the registration, and the copy of the list a process keeps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sto_registrations import domain
from sto_registrations.domain import Applicant
from sto_registrations.schools import (
    MAX_LISTED,
    OTHER_SITES,
    chosen_code,
    school_choice,
    with_school,
)
from stolive_shared.events_client import (
    EventsClient,
    EventsUnavailable,
    SchoolDirectory,
    SchoolSite,
)

EMMEN = SchoolSite("99ZG00", "Techniekschool Drenthe", "Emmen", "drenthe", "Techniekschool (Emmen)")
ASSEN = SchoolSite("99ZG01", "Techniekschool Assen", "Assen", "drenthe", "Techniekschool (Assen)")
GRONINGEN = SchoolSite("99ZE00", "Noorderpoort", "Groningen", "groningen", "Noorderpoort")
LOOSE = SchoolSite("99ZX00", "Zonder Regio", "Ergens", None, "Zonder Regio (Ergens)")
SITES = [ASSEN, GRONINGEN, EMMEN, LOOSE]
NAMES = {"drenthe": "Drenthe", "groningen": "Groningen"}


def listed(choice: Any) -> list[tuple[str, list[str]]]:
    return [(group.name, [site.code for site in group.sites]) for group in choice.groups]


class TestWhatTheFormLists:
    def test_a_regional_meeting_lists_the_sites_of_its_regions(self) -> None:
        choice = school_choice(SITES, NAMES, ["drenthe"])

        assert listed(choice) == [("Drenthe", ["99ZG01", "99ZG00"])]
        assert not choice.per_region

    def test_the_region_and_the_site_a_person_chose_are_listed_too(self) -> None:
        by_region = school_choice(SITES, NAMES, ["drenthe"], chosen_region="groningen")
        by_site = school_choice(SITES, NAMES, ["drenthe"], chosen_school="99ZE00")

        assert (
            listed(by_region)
            == listed(by_site)
            == [
                ("Drenthe", ["99ZG01", "99ZG00"]),
                ("Groningen", ["99ZE00"]),
            ]
        )

    def test_a_national_event_lists_every_site_grouped_by_region_the_loose_ones_last(
        self,
    ) -> None:
        choice = school_choice(SITES, NAMES, [])

        assert listed(choice) == [
            ("Drenthe", ["99ZG01", "99ZG00"]),
            ("Groningen", ["99ZE00"]),
            (OTHER_SITES, ["99ZX00"]),
        ]

    def test_a_meeting_in_a_region_without_sites_lists_them_all(self) -> None:
        assert listed(school_choice(SITES, NAMES, ["friesland"])) == listed(
            school_choice(SITES, NAMES, [])
        )

    def test_too_many_sites_for_one_list_ask_for_the_region_first(self) -> None:
        many = [
            SchoolSite(f"{n:02d}AA00", f"School {n}", "Plaats", "drenthe", f"School {n}")
            for n in range(MAX_LISTED + 1)
        ]

        before = school_choice([*many, GRONINGEN], NAMES, [])
        after = school_choice([*many, GRONINGEN], NAMES, [], chosen_region="groningen")

        assert before.per_region
        assert before.offered
        assert listed(before) == []
        assert listed(after) == [("Groningen", ["99ZE00"])]

    def test_without_a_list_the_form_offers_the_text_field_alone(self) -> None:
        assert not school_choice([], NAMES, ["drenthe"]).offered


class TestAChosenSite:
    def test_gives_its_code_its_name_and_its_region_when_none_was_chosen(self) -> None:
        person = Applicant("Anna", "anna@school.nl", "iets getypt", "docent", None)

        at_school = with_school(person, EMMEN)

        assert (at_school.school_code, at_school.organisation, at_school.region_code) == (
            "99ZG00",
            "Techniekschool (Emmen)",
            "drenthe",
        )

    def test_never_overwrites_the_region_a_person_chose(self) -> None:
        person = Applicant("Anna", "anna@school.nl", "", "docent", "groningen")

        assert with_school(person, EMMEN).region_code == "groningen"

    @pytest.mark.parametrize(
        ("value", "code"),
        [("", None), (None, None), ("anders", None), (" 99zg00 ", "99ZG00"), ("X", "X")],
    )
    def test_the_form_value_names_a_code_or_another_school(
        self, value: str | None, code: str | None
    ) -> None:
        assert chosen_code(value) == code

    def test_a_code_that_is_not_a_site_code_is_refused_in_dutch(self) -> None:
        person = Applicant("Anna", "anna@school.nl", "", "docent", None, school_code="nonsense")

        assert domain.applicant_problems(person) == {"school_code": domain.SCHOOL_UNKNOWN}


class FakeEvents(EventsClient):
    """The events service's school list, answering from memory (or not at all)."""

    def __init__(self, schools: list[dict[str, Any]]) -> None:
        super().__init__("http://events.invalid")
        self.listed = schools
        self.away = False
        self.calls = 0

    async def schools(
        self, region_code: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        assert region_code is None  # fewer sites than one answer holds
        self.calls += 1
        await asyncio.sleep(0.01)  # the network: other callers run meanwhile
        if self.away:
            raise EventsUnavailable("away")
        return [dict(s) for s in self.listed][:limit]


def raw(site: SchoolSite) -> dict[str, Any]:
    return {
        "code": site.code,
        "name": site.name,
        "place": site.place,
        "region_code": site.region_code,
        "label": site.label,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# The names the directories give the fetches they start in the background.
_REFRESHES = {"region-directory", "school-directory"}


async def settled() -> None:
    """Until the refreshes started in the background have come in (a condition, not a nap).
    Only those: the tests share one event loop with the session's long-lived tasks."""
    refreshes = [t for t in asyncio.all_tasks() if t.get_name() in _REFRESHES and not t.done()]
    if refreshes:
        await asyncio.wait(refreshes, timeout=30)


class TestTheCopyOfTheList:
    async def test_reading_never_waits_a_stale_copy_is_refreshed_behind_it(self) -> None:
        events, clock = FakeEvents([raw(EMMEN)]), Clock()
        directory = SchoolDirectory(events, refresh_s=60, clock=clock)

        assert directory.sites() == []  # nothing yet: the form offers the text field
        await settled()
        assert [s.code for s in directory.sites()] == ["99ZG00"]

        events.listed.append(raw(ASSEN))
        clock.now += 30
        assert len(directory.sites()) == 1  # fresh enough: no fetch
        clock.now += 31
        assert len(directory.sites()) == 1  # stale: served, and refreshed behind it
        await settled()
        assert [s.code for s in directory.sites()] == ["99ZG01", "99ZG00"]
        assert directory.label("99ZG01") == ASSEN.label
        assert directory.label("99QQ00") == "99QQ00"

    async def test_a_code_not_in_the_copy_is_looked_up_again_at_most_once_per_recheck(
        self,
    ) -> None:
        events, clock = FakeEvents([raw(EMMEN)]), Clock()
        directory = SchoolDirectory(events, refresh_s=300, recheck_s=30, clock=clock)
        await directory.refresh()
        events.listed.append(raw(ASSEN))
        clock.now += 31

        assert await directory.known("99ZG01") == ASSEN  # imported a moment ago
        calls = events.calls
        assert await directory.known("99QQ00") is None
        assert await directory.known("99QQ01") is None
        assert events.calls == calls  # unknown codes do not hammer the events service

    async def test_sign_ups_that_ask_at_once_for_a_new_code_share_one_fetch(self) -> None:
        events, clock = FakeEvents([raw(EMMEN)]), Clock()
        directory = SchoolDirectory(events, refresh_s=300, recheck_s=30, clock=clock)
        await directory.refresh()
        events.listed.append(raw(ASSEN))
        clock.now += 31
        calls = events.calls

        found = await asyncio.gather(*(directory.known("99ZG01") for _ in range(5)))

        assert found == [ASSEN] * 5
        assert events.calls == calls + 1

    async def test_an_events_service_away_keeps_what_was_known(self) -> None:
        events, clock = FakeEvents([raw(EMMEN)]), Clock()
        directory = SchoolDirectory(events, refresh_s=60, clock=clock)
        await directory.refresh()
        events.away = True
        clock.now += 61

        assert not await directory.refresh()
        assert directory.get("99ZG00") == EMMEN
        await directory.close()
