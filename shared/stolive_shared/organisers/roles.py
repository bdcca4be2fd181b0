"""Who may do what: the four organiser roles, what each may do, and over which events.

Pure rules, no I/O. Every service asks the same two questions of the ``Organiser`` a request
carries: may this role do this kind of thing at all (``may``), and does this organiser's scope
cover this event (``covers``)? The answer is the same on a page and in the API, because both
ask here.

- programme team: everything, everywhere;
- regional programme leader: events, attendees, check-in, figures and mailings of their own
  regions; an event is theirs when one of its regions is (a national webinar is not);
- support: reads events and figures everywhere, changes nothing;
- check-in staff: the check-in of the events they are given, nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

Role = Literal["programme", "regional", "support", "checkin"]
ROLES: tuple[Role, ...] = get_args(Role)

ROLE_NL: dict[Role, str] = {
    "programme": "programmateam",
    "regional": "regionaal programmaleider",
    "support": "ondersteuning (alleen lezen)",
    "checkin": "incheckmedewerker",
}


class Capability(StrEnum):
    """A kind of action; routes declare the one they need."""

    VIEW_EVENTS = "view_events"
    EDIT_EVENTS = "edit_events"
    VIEW_REGISTRATIONS = "view_registrations"
    MANAGE_REGISTRATIONS = "manage_registrations"
    CHECK_IN = "check_in"
    VIEW_FIGURES = "view_figures"
    MAILINGS = "mailings"
    # Export or erase any person's data, by address: not bound to an event, so never scoped.
    PERSONAL_DATA = "personal_data"
    # Regions, series, schools: the programme's own set-up.
    PROGRAMME_SETUP = "programme_setup"
    # The platform's own plumbing: dead letters, whose replay may touch every service's data.
    OPERATIONS = "operations"
    ACCOUNTS = "accounts"
    READ_AUDIT = "read_audit"


_MAY: dict[Role, frozenset[Capability]] = {
    "programme": frozenset(Capability),
    "regional": frozenset(
        {
            Capability.VIEW_EVENTS,
            Capability.EDIT_EVENTS,
            Capability.VIEW_REGISTRATIONS,
            Capability.MANAGE_REGISTRATIONS,
            Capability.CHECK_IN,
            Capability.VIEW_FIGURES,
            Capability.MAILINGS,
        }
    ),
    "support": frozenset({Capability.VIEW_EVENTS, Capability.VIEW_FIGURES}),
    "checkin": frozenset({Capability.CHECK_IN}),
}


@dataclass(frozen=True)
class Organiser:
    """The signed-in organiser of a request, as their account says now (read per request, so
    a changed role or a removed account counts at once)."""

    account_id: int
    email: str
    name: str
    role: Role
    regions: frozenset[str] = frozenset()
    events: frozenset[uuid.UUID] = frozenset()

    @property
    def role_nl(self) -> str:
        return ROLE_NL[self.role]

    @property
    def everywhere(self) -> bool:
        """Whose scope is every event (the programme team and support)."""
        return self.role in ("programme", "support")

    def may(self, capability: Capability) -> bool:
        return capability in _MAY[self.role]

    def covers(self, event_id: uuid.UUID, event_regions: Iterable[str]) -> bool:
        """Whether the event is in this organiser's scope (not whether the action is allowed)."""
        if self.everywhere:
            return True
        if self.role == "checkin":
            return event_id in self.events
        return not self.regions.isdisjoint(event_regions)

    def covers_regions(self, regions: Iterable[str]) -> bool:
        """Whether every one of ``regions`` is this organiser's (a mailing's audience, say); an
        empty set means 'everyone', which only the whole-programme roles cover."""
        wanted = set(regions)
        if self.everywhere:
            return True
        return bool(wanted) and wanted <= self.regions


def may(role: Role, capability: Capability) -> bool:
    return capability in _MAY[role]


def account_problems(
    email: str,
    name: str,
    role: str,
    regions: Iterable[str],
    events: Iterable[str],
    known_regions: Iterable[str],
) -> dict[str, str]:
    """What is wrong with an account as typed on the accounts page, per field, in Dutch."""
    problems: dict[str, str] = {}
    local, at, domain = email.strip().partition("@")
    if not (at and local and "." in domain and " " not in email.strip() and len(email) <= 254):
        problems["email"] = "Vul een geldig e-mailadres in."
    if not name.strip() or len(name) > 200:
        problems["name"] = "Vul een naam in (hoogstens 200 tekens)."
    if role not in ROLES:
        problems["role"] = "Kies een rol."
    unknown = set(regions) - set(known_regions)
    if unknown:
        problems["regions"] = "Onbekende regio: " + ", ".join(sorted(unknown)) + "."
    elif role == "regional" and not set(regions):
        problems["regions"] = "Kies minstens één regio voor een regionaal programmaleider."
    chosen = list(events)
    try:
        [uuid.UUID(e) for e in chosen]
    except ValueError:
        problems["events"] = "Kies evenementen uit de lijst."
    else:
        if role == "checkin" and not chosen:
            problems["events"] = "Kies minstens één evenement voor een incheckmedewerker."
    return problems
