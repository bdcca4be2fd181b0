"""Dependencies of the analytics routes: the use cases and the settings, both from the parts
bootstrap built (the organiser check is the shared one, ``stolive_shared.organisers.web``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from sto_analytics.config import AnalyticsSettings
from sto_analytics.service import AnalyticsService

if TYPE_CHECKING:
    from sto_analytics.bootstrap import Analytics


def get_parts(request: Request) -> Analytics:
    parts: Analytics = request.app.state.parts
    return parts


def get_service(request: Request) -> AnalyticsService:
    return get_parts(request).service


def get_settings(request: Request) -> AnalyticsSettings:
    return get_parts(request).runtime.settings


ServiceDep = Annotated[AnalyticsService, Depends(get_service)]
SettingsDep = Annotated[AnalyticsSettings, Depends(get_settings)]
