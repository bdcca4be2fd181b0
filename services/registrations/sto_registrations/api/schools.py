"""School sites where the HTTP faces need them: the list this process keeps
(``SchoolDirectory``, refreshed from the events service in the background, so a form page
never waits on it), a chosen code checked against it, and the labels the organisers' lists
show."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request

from sto_registrations.domain import SCHOOL_CODE, Applicant, EventTerms, SchoolUnknown
from sto_registrations.schools import SchoolChoice, school_choice, with_school
from stolive_shared.events_client import SchoolDirectory


def school_directory(request: Request) -> SchoolDirectory:
    directory: SchoolDirectory = request.app.state.parts.schools
    return directory


async def at_school(
    directory: SchoolDirectory, applicants: list[Applicant], code: str | None
) -> list[Applicant]:
    """The applicants (a person and their colleagues) at the chosen site; ``SchoolUnknown``
    (422) for a code not in the list. No code: as they are (another school, typed)."""
    if code is None:
        return applicants
    site = await directory.known(code) if SCHOOL_CODE.match(code) else None
    if site is None:
        raise SchoolUnknown()
    return [with_school(applicant, site) for applicant in applicants]


def form_choice(
    directory: SchoolDirectory,
    regions: Sequence[dict[str, Any]],
    event: EventTerms,
    form: dict[str, Any],
) -> SchoolChoice:
    """The sites the sign-up form lists for this event and what was chosen so far."""
    return school_choice(
        directory.sites(),
        {str(region["code"]): str(region["name"]) for region in regions},
        event.region_codes,
        chosen_region=form.get("region_code") or None,
        chosen_school=form.get("school_code") or None,
    )


def school_labels(directory: SchoolDirectory, codes: Iterable[str | None]) -> dict[str, str]:
    """Code -> label of the chosen sites among ``codes`` that the list knows."""
    labels: dict[str, str] = {}
    for code in codes:
        site = directory.get(code) if code else None
        if site is not None:
            labels[site.code] = site.label
    return labels
