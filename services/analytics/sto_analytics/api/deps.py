"""Dependencies of the analytics routes: the use cases, the settings (both from the parts
bootstrap built) and who may read which figures (the shared check,
``stolive_shared.organisers.web``).

Every organiser route needs VIEW_FIGURES; an event's figures also need the event in the
organiser's scope. A series runs over every region, so its figures are for the roles whose
scope is the whole programme (the programme team and support).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from sto_analytics.config import AnalyticsSettings
from sto_analytics.service import AnalyticsService
from stolive_shared.events_client import SchoolDirectory
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs, needs_page

if TYPE_CHECKING:
    from sto_analytics.bootstrap import Analytics


def get_parts(request: Request) -> Analytics:
    parts: Analytics = request.app.state.parts
    return parts


def get_service(request: Request) -> AnalyticsService:
    return get_parts(request).service


def get_settings(request: Request) -> AnalyticsSettings:
    return get_parts(request).runtime.settings


def get_schools(request: Request) -> SchoolDirectory:
    return get_parts(request).schools


ServiceDep = Annotated[AnalyticsService, Depends(get_service)]
SettingsDep = Annotated[AnalyticsSettings, Depends(get_settings)]
# The school sites' labels, a copy kept in memory (never a call per request).
SchoolLabels = Annotated[SchoolDirectory, Depends(get_schools)]

FigureReader = Annotated[Organiser, needs(Capability.VIEW_FIGURES)]
EventFigureReader = Annotated[Organiser, needs(Capability.VIEW_FIGURES, event=True)]
FigurePage = Annotated[Organiser, needs_page(Capability.VIEW_FIGURES)]
EventFigurePage = Annotated[Organiser, needs_page(Capability.VIEW_FIGURES, event=True)]

SERIES_ARE_NATIONAL = (
    "De cijfers van een reeks gaan over alle regio's: alleen het programmateam en "
    "ondersteuning kunnen ze bekijken."
)


async def whole_programme(request: Request, who: FigureReader) -> Organiser:
    """Series figures: 403 (and an audit row) for a role whose scope is not every event."""
    if not who.everywhere:
        await access_of(request).refuse(request, who, SERIES_ARE_NATIONAL)
    return who


SeriesReader = Annotated[Organiser, Depends(whole_programme)]


async def whole_programme_page(request: Request, who: FigurePage) -> Organiser:
    """The series page: a Dutch 403 page (and an audit row) for the other roles."""
    if not who.everywhere:
        await access_of(request).refuse(request, who, SERIES_ARE_NATIONAL)
    return who


SeriesPage = Annotated[Organiser, Depends(whole_programme_page)]
