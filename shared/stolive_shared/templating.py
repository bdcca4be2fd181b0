"""Jinja2 templates for the services' Dutch pages, with times shown in Europe/Amsterdam.

A service's page templates come from its own folder first, then from the shared folder
``stolive_shared/templates/`` (``_footer.html``, the footer of every page, and its
``_footer.css``). Every page gets ``statements`` (``StatementLinks``) in its context: where
the privacy and accessibility statements are, and the privacy statement's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates

from stolive_shared.organisers.roles import ROLE_NL
from stolive_shared.programme import EVENT_STATUS_NL
from stolive_shared.urls import ConsoleUrls, PublicUrls

if TYPE_CHECKING:
    from stolive_shared.programme import EVENT_STATUS_NL
from stolive_shared.settings import ServiceSettings

PROGRAMME_TZ = ZoneInfo("Europe/Amsterdam")
SHARED_TEMPLATES = Path(__file__).parent / "templates"
_DAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]
_MONTHS = [
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
]  # fmt: skip


def local_time(moment: datetime | str, fmt: str | None = None) -> str:
    """'dinsdag 6 februari 2024, 15:30' in Amsterdam time, or ``fmt`` when given; from a
    datetime or its ISO text (what another service's JSON carries)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(PROGRAMME_TZ)
    if fmt:
        return local.strftime(fmt)
    day, month = _DAYS[local.weekday()], _MONTHS[local.month - 1]
    return f"{day} {local.day} {month} {local.year}, {local:%H:%M}"


def decimal(value: float, places: int = 1) -> str:
    """A number as the Dutch write it: '0,1', not '0.1'."""
    return f"{value:.{places}f}".replace(".", ",")


def long_date(day: date | str) -> str:
    """'2 december 2026', from a date or its ISO text ('2026-12-02')."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class StatementLinks:
    """What the footer of every page and the consent boxes show of the statements."""

    privacy: str  # the privacy statement's address
    accessibility: str  # the accessibility statement's address
    privacy_version: str  # the version a person agrees to, e.g. '2026-12-02'

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> StatementLinks:
        urls = PublicUrls(settings.public_base_url)
        return cls(
            privacy=urls.privacy_statement(),
            accessibility=urls.accessibility_statement(),
            privacy_version=settings.privacy_statement_version,
        )


def statement_links(request: Request) -> dict[str, Any]:
    """``statements`` for every page, from the settings of the app that serves it (every
    service's app keeps its parts, with their ``Runtime``, in ``app.state.parts``).

    The links are absolute, at ``PUBLIC_BASE_URL`` (``PublicUrls``), as in e-mails: the
    statements are the events service's pages, so a link under this page's own prefix
    (``pages.base_path``) would miss them, and a root-relative ``/events/...`` works through
    the gateway but not on another service's own port. The public address works from both.
    """
    settings: ServiceSettings = request.app.state.parts.runtime.settings
    return {
        "statements": StatementLinks.from_settings(settings),
        "console": ConsoleUrls(settings.public_base_url),
    }


def make_templates(directory: Path) -> Jinja2Templates:
    """The page templates of a service whose own templates are in ``directory``."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(directory), jinja2.FileSystemLoader(SHARED_TEMPLATES)]
        ),
        autoescape=jinja2.select_autoescape(),
    )
    env.filters["local_time"] = local_time
    env.filters["long_date"] = long_date
    env.filters["decimal"] = decimal
    env.globals["EVENT_STATUS_NL"] = EVENT_STATUS_NL
    env.globals["ROLE_NL"] = ROLE_NL
    return Jinja2Templates(env=env, context_processors=[statement_links])
