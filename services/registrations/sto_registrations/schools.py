"""School sites on the sign-up form: which sites the form lists, and what a chosen one means
for the registration. Pure: the sites are the events service's list as this process keeps it
(``stolive_shared.events_client.SchoolDirectory``).

The form lists the sites of the event's regions (a regional or supra-regional meeting), with
those of the region the person chose and of the site they chose already. A national event
(a webinar, the national day) lists every site, grouped by region, while that is at most
``MAX_LISTED``; beyond that only the sites of the chosen STO region, which the form asks for
first (a server-side submit, so it works without JavaScript). Whoever does not find their
school chooses "Andere school of organisatie" and types it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sto_registrations.domain import Applicant
from stolive_shared.events_client import SchoolSite

# More sites than this make one select unusable (and the page heavy): a region first.
MAX_LISTED = 300
# The select's option for a school that is not in the list: the typed name is used.
OTHER = "anders"
OTHER_SITES = "Overige scholen"


@dataclass(frozen=True)
class SchoolGroup:
    """The sites of one region, as one ``<optgroup>``."""

    region_code: str | None
    name: str
    sites: tuple[SchoolSite, ...]


@dataclass(frozen=True)
class SchoolChoice:
    """What the form offers: groups of sites; ``per_region`` when there are too many to list
    and only the chosen region's are shown (none before a region is chosen)."""

    groups: tuple[SchoolGroup, ...] = ()
    per_region: bool = False

    @property
    def offered(self) -> bool:
        return bool(self.groups) or self.per_region


def chosen_code(value: str | None) -> str | None:
    """The site code a form or API value names; None for none or "another school"."""
    value = (value or "").strip().upper()
    return None if value in ("", OTHER.upper()) else value


def school_choice(
    sites: Sequence[SchoolSite],
    region_names: Mapping[str, str],
    event_regions: Sequence[str],
    chosen_region: str | None = None,
    chosen_school: str | None = None,
    limit: int = MAX_LISTED,
) -> SchoolChoice:
    """The sites the form lists (see the module docstring), grouped by region."""
    by_region: dict[str | None, list[SchoolSite]] = {}
    for site in sites:
        by_region.setdefault(site.region_code, []).append(site)
    chosen = next((site for site in sites if site.code == chosen_school), None)
    extra = [
        code
        for code in (chosen_region, chosen.region_code if chosen else None)
        if code is not None and code in by_region
    ]
    own = [code for code in event_regions if code in by_region]
    per_region = False
    regions: list[str | None]
    if own:
        regions = [*own, *extra]
    elif len(sites) <= limit:
        regions = sorted(by_region, key=lambda code: (code is None, _name(code, region_names)))
    else:
        per_region = True
        regions = list(extra)
    groups = tuple(
        SchoolGroup(code, _name(code, region_names), tuple(by_region[code]))
        for code in dict.fromkeys(regions)
    )
    return SchoolChoice(groups, per_region)


def with_school(applicant: Applicant, site: SchoolSite) -> Applicant:
    """The applicant at this site: its code, its label as the school's name (what e-mails and
    lists say), and its region where the person chose none (fills in, never overwrites)."""
    return dataclasses.replace(
        applicant,
        school_code=site.code,
        organisation=site.label,
        region_code=applicant.region_code or site.region_code,
    )


def _name(region_code: str | None, region_names: Mapping[str, str]) -> str:
    if region_code is None:
        return OTHER_SITES
    return region_names.get(region_code, region_code)
