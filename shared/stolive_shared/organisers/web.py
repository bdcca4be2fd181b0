"""The organiser check every service's routes declare, and the session cookie.

A request proves an organiser with the session cookie the events service's login page sets
(for the whole site: path ``/``), or with ``Authorization: Bearer <token>`` (scripts). Both are
checked in PostgreSQL on every request (``store``): logging out or revoking a token takes
effect in every service at once.

Each route says who may use it, and the security suite reads that from the apps:
- ``OrganiserDep`` (API): no credential is 401, a wrong token 403;
- ``OrganiserPageDep`` (pages): without a session the visitor is sent to the login page,
  which brings them back afterwards;
- ``PUBLIC`` (``dependencies=[PUBLIC]`` on the route or its router): meant for everyone.
A route with none of these is a mistake the suite finds.

The cookie is HttpOnly and SameSite=Lax; over https it is Secure and named with the
``__Host-`` prefix (no Domain, path ``/``: no subdomain can set or shadow it).
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response

from stolive_shared.organisers.store import OrganiserStore, TokenOwner

log = logging.getLogger(__name__)

LOGIN_PATH = "/events/organiser/inloggen"
NEXT_PARAM = "volgende"


def session_cookie_name(https: bool) -> str:
    return "__Host-sto_session" if https else "sto_session"


class LoginRequired(Exception):
    """An organiser page asked for without a session: ``stolive_shared.web`` answers it with
    a redirect to ``login_url``."""

    def __init__(self, login_url: str) -> None:
        super().__init__("organiser login needed")
        self.login_url = login_url


class OrganiserAccess:
    """Who the organiser of a request is, and the session cookie's coming and going."""

    def __init__(self, store: OrganiserStore, *, https: bool) -> None:
        self.store = store
        self.https = https
        self.cookie = session_cookie_name(https)

    async def session_organiser(self, request: Request) -> str | None:
        session_id = request.cookies.get(self.cookie)
        return await self.store.session_organiser(session_id) if session_id else None

    async def require(self, request: Request) -> str:
        organiser = await self.session_organiser(request)
        if organiser is not None:
            return organiser
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                401, "Inloggen als organisator is nodig", headers={"WWW-Authenticate": "Bearer"}
            )
        owner = await self.store.token_owner(token.strip())
        if owner is None:
            raise HTTPException(403, "Deze sleutel geeft geen toegang")
        return owner.organiser

    async def require_page(self, request: Request) -> str:
        organiser = await self.session_organiser(request)
        if organiser is None:
            raise LoginRequired(login_url(request))
        return organiser

    async def log_in(self, response: Response, owner: TokenOwner) -> None:
        session_id = await self.store.start_session(owner)
        log.info(
            "organiser logged in",
            extra={"ctx_organiser": owner.organiser, "ctx_token_id": owner.token_id},
        )
        response.set_cookie(
            self.cookie,
            session_id,
            max_age=int(self.store.lifetime.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.https,
        )

    async def log_out(self, request: Request, response: Response) -> None:
        session_id = request.cookies.get(self.cookie)
        if session_id:
            organiser = await self.store.session_organiser(session_id)
            await self.store.end_session(session_id)
            log.info("organiser logged out", extra={"ctx_organiser": organiser})
        response.delete_cookie(
            self.cookie, path="/", httponly=True, samesite="lax", secure=self.https
        )


def login_url(request: Request) -> str:
    """The login page, with the way back to where the visitor was."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{LOGIN_PATH}?{NEXT_PARAM}={quote(here, safe='/')}"


def safe_next(value: str | None, default: str) -> str:
    """Where to go after login: a path on this site only (never ``//elsewhere``)."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or not value.isascii()
        or not value.isprintable()
        or len(value) > 1000
    ):
        return default
    return value


def _access(request: Request) -> OrganiserAccess:
    access: OrganiserAccess = request.app.state.organisers
    return access


async def require_organiser(request: Request) -> str:
    """API routes: the organiser's name, else 401 (no credential) or 403 (a wrong token)."""
    return await _access(request).require(request)


async def require_organiser_page(request: Request) -> str:
    """Organiser pages: the organiser's name, else a redirect to the login page."""
    return await _access(request).require_page(request)


def public_route() -> None:
    """Marks a route meant for everyone (``PUBLIC``)."""


OrganiserDep = Annotated[str, Depends(require_organiser)]
OrganiserPageDep = Annotated[str, Depends(require_organiser_page)]
PUBLIC = Depends(public_route)
