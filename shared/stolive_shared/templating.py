"""Jinja2 templates for the services' Dutch pages, with times shown in Europe/Amsterdam."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates

PROGRAMME_TZ = ZoneInfo("Europe/Amsterdam")
_DAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]
_MONTHS = [
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
]  # fmt: skip


def local_time(moment: datetime, fmt: str | None = None) -> str:
    """'dinsdag 6 februari 2024, 15:30' in Amsterdam time, or ``fmt`` when given."""
    local = moment.astimezone(PROGRAMME_TZ)
    if fmt:
        return local.strftime(fmt)
    day, month = _DAYS[local.weekday()], _MONTHS[local.month - 1]
    return f"{day} {local.day} {month} {local.year}, {local:%H:%M}"


def make_templates(directory: Path) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(directory))
    templates.env.filters["local_time"] = local_time
    return templates
