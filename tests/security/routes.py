"""Every route of the four services, read from the apps themselves, and who may use it.

A route says so through its dependencies (``stolive_shared.organisers.web``): ``PUBLIC``, the
organiser API check (401/403), the organiser page check (to the login page), or the service
token of the internal APIs (``stolive_shared.internal``: 404 to anyone else). The suites send
requests to every route that is not public, so a route added later is covered without editing
a test, and a route that says nothing is a failure of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal, cast

import asyncpg
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import SecretStr

from stolive_shared.internal import require_service
from stolive_shared.organisers.web import public_route, require_organiser, require_organiser_page
from stolive_shared.runtime import Runtime, ServiceDefinition

SERVICES = ("events", "registrations", "notifications", "analytics")
Access = Literal["public", "organiser api", "organiser page", "internal", "unsaid"]


@dataclass(frozen=True)
class ServiceRoute:
    service: str
    method: str
    path: str  # as the service serves it, e.g. /api/events/{event_id}
    access: Access
    name: str

    def url(self, values: dict[str, str]) -> str:
        """The path through the gateway, each ``{parameter}`` filled in from ``values``."""

        def value(match: re.Match[str]) -> str:
            return values.get(match.group(1), "x")

        return f"/{self.service}" + re.sub(r"\{(\w+)(?::\w+)?\}", value, self.path)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def access_of(dependant: Dependant) -> Access:
    calls = set(_calls(dependant))
    if require_organiser_page in calls:
        return "organiser page"
    if require_organiser in calls:
        return "organiser api"
    if public_route in calls:
        return "public"
    if require_service in calls:
        return "internal"
    return "unsaid"


def service_routes() -> list[ServiceRoute]:
    """Every API route of every service, built as the services build them (no I/O)."""
    found: list[ServiceRoute] = []
    for service in SERVICES:
        module = import_module(f"sto_{service}.bootstrap")
        definition = cast(ServiceDefinition[Any, Any], module.DEFINITION)
        settings = definition.settings_factory().model_copy(
            update={
                "link_secret": SecretStr("route-listing-link-secret"),
                "session_secret": SecretStr("route-listing-session-secret"),
            }
        )
        app = definition.app(Runtime(settings=settings, pool=cast(asyncpg.Pool, None)))
        for path, methods, dependant, name in _api_routes(app.routes):
            for method in sorted(methods - {"HEAD"}):
                found.append(ServiceRoute(service, method, path, access_of(dependant), name))
    return found


def _api_routes(routes: list[Any]) -> Iterator[tuple[str, set[str], Dependant, str]]:
    """(path, methods, dependant, name) of each API route, through included routers (which
    this FastAPI keeps as routers of their own). /docs and /openapi.json are Starlette's own
    routes, off in production: not listed."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route.path, set(route.methods or ()), route.dependant, route.name
        elif hasattr(route, "effective_candidates"):
            contexts = [*route.effective_candidates(), *route.effective_low_priority_routes()]
            for context in contexts:
                if hasattr(context, "effective_candidates"):  # a router included in one
                    yield from _api_routes([context])
                elif getattr(context, "dependant", None) is not None and context.methods:
                    yield context.path, set(context.methods), context.dependant, context.name
