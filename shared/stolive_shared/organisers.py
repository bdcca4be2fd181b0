"""Organiser authentication, the same in every service.

Organiser tokens live (hashed) in the events service. A request proves an organiser either
with ``Authorization: Bearer <token>``, checked by the events service
(``GET /api/organiser/me``, cached for a minute), or with the signed session cookie the
events service's login page sets for the whole site (path ``/``), which every service can
verify with the shared ``LINK_SECRET``. No credential: 401; a wrong one: 403; the events
service away (or answering nonsense): ``DependencyUnavailable``, which the services answer
with 503 and ``Retry-After`` (``stolive_shared.web``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
from fastapi import HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from stolive_shared.errors import DependencyUnavailable

SESSION_COOKIE = "sto_organiser"
SESSION_MAX_AGE_S = 12 * 3600
_SALT = "organiser-session"


def session_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def session_cookie_value(secret: str, organiser: str) -> str:
    return session_serializer(secret).dumps({"organiser": organiser})


def organiser_from_cookie(secret: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        data = session_serializer(secret).loads(value, max_age=SESSION_MAX_AGE_S)
    except BadSignature:
        return None
    organiser = data.get("organiser") if isinstance(data, dict) else None
    return organiser if isinstance(organiser, str) else None


class OrganiserVerifier:
    """Checks bearer tokens with the events service; remembers answers for ``ttl_s``."""

    def __init__(self, events_api_url: str, ttl_s: float = 60.0) -> None:
        self._url = events_api_url.rstrip("/") + "/api/organiser/me"
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[float, str | None]] = {}

    async def organiser_for(self, token: str) -> str | None:
        cached = self._known.get(token)
        if cached and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        try:
            async with httpx.AsyncClient(timeout=3.0) as client:
                answer = await client.get(self._url, headers={"Authorization": f"Bearer {token}"})
            if answer.status_code in (401, 403):
                organiser: str | None = None
            elif answer.status_code == 200:
                organiser = answer.json()["organiser"]
            else:
                raise DependencyUnavailable(f"events service answered {answer.status_code}")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            # Unreachable, timed out, or an answer we cannot read: we cannot tell, so 503.
            raise DependencyUnavailable(f"organiser check failed: {exc!r}") from exc
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[token] = (time.monotonic(), organiser)
        return organiser


def organiser_dependency(
    secret: str, verifier: OrganiserVerifier
) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency returning the organiser's name, or raising 401/403."""

    async def require_organiser(request: Request) -> str:
        from_cookie = organiser_from_cookie(secret, request.cookies.get(SESSION_COOKIE))
        if from_cookie:
            return from_cookie
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(
                401, "Inloggen als organisator is nodig", headers={"WWW-Authenticate": "Bearer"}
            )
        organiser = await verifier.organiser_for(token.strip())
        if organiser is None:
            raise HTTPException(403, "Deze sleutel geeft geen toegang")
        return organiser

    return require_organiser
