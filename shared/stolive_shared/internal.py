"""Reads between the services that carry personal data (what one person's export gathers from
every service), and the few requests one service makes of another (the organiser's sign-in
e-mail). They are never for the public address: the gateway and nginx refuse every
``/<service>/internal/`` path, and a service answers one only to a caller that shows the
service token, derived from ``LINK_SECRET`` (which only the platform's own processes hold).
Anything else gets the 404 an unknown path gets: nobody learns the route exists.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from fastapi import Depends, HTTPException, Request

from stolive_shared.errors import DependencyUnavailable
from stolive_shared.http import stateless_client

HEADER = "X-Stolive-Service"
TIMEOUT_S = 5.0


def service_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"stolive internal api v1", hashlib.sha256).hexdigest()


async def require_service(request: Request) -> None:
    settings = request.app.state.parts.runtime.settings
    shown = request.headers.get(HEADER, "")
    if not hmac.compare_digest(shown.encode(), service_token(settings.link_key()).encode()):
        raise HTTPException(404, "Niet gevonden")


# Every internal route declares it: ``APIRouter(prefix="/internal", dependencies=[INTERNAL])``.
INTERNAL = Depends(require_service)


class ServiceUnavailable(DependencyUnavailable):
    """Another service did not answer an internal read (in time, or with what it promises)."""


class InternalClient:
    """Calls another service's internal API as one of the platform's processes."""

    def __init__(self, base_url: str, secret: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self._base = base_url.rstrip("/")
        self._token = service_token(secret)
        self._timeout_s = timeout_s

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            async with stateless_client(timeout=self._timeout_s) as client:
                response = await client.get(
                    self._base + path, params=params, headers={HEADER: self._token}
                )
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(f"{self._base}{path}: {exc}") from exc

    async def post(self, path: str, json: Any) -> Any:
        """Ask another service to do something (its internal API): the answer's JSON."""
        try:
            async with stateless_client(timeout=self._timeout_s) as client:
                response = await client.post(
                    self._base + path, json=json, headers={HEADER: self._token}
                )
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(f"{self._base}{path}: {exc}") from exc
