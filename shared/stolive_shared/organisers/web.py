"""The organiser check every service's routes declare, and the session cookie.

A request proves an organiser with the session cookie the events service's login page sets
(for the whole site: path ``/``), or with ``Authorization: Bearer <token>`` (scripts). Both are
checked in PostgreSQL on every request (``store``): logging out or revoking a token takes
effect in every service at once.

Each route says who may use it, and the security suite reads that from the apps:
- ``needs(capability)`` (API): no credential is 401, a wrong token 403, a role without the
  capability 403; with ``event=True`` the path's ``event_id`` must be in the organiser's scope;
- ``needs_page(capability)`` (pages): the same, but without a session the visitor is sent to
  the login page (which brings them back afterwards) and a refusal is a Dutch page;
- ``OrganiserDep`` / ``OrganiserPageDep``: any signed-in organiser, whatever the role;
- ``PUBLIC`` (``dependencies=[PUBLIC]`` on the route or its router): meant for everyone.
A route with none of these is a mistake the suite finds. Every refusal of a signed-in
organiser leaves a row in the audit log.

The cookie is HttpOnly and SameSite=Lax; over https it is Secure and named with the
``__Host-`` prefix (no Domain, path ``/``: no subdomain can set or shadow it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response

from stolive_shared.organisers.audit import AuditLog, EventScope
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.store import OrganiserStore

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


class Forbidden(Exception):
    """A signed-in organiser asked a page for something outside their role or scope:
    ``stolive_shared.web`` answers it with a Dutch 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


OUT_OF_ROLE = "Je rol geeft geen toegang tot deze pagina of handeling."
OUT_OF_REGIONS = "Je kunt alleen je eigen regio's kiezen (minstens één)."
OUT_OF_SCOPE = "Dit evenement valt buiten de regio's of evenementen van je account."


class OrganiserAccess:
    """Who the organiser of a request is, what they may do, the audit log of what they did,
    and the session cookie's coming and going."""

    def __init__(self, store: OrganiserStore, audit: AuditLog, *, https: bool) -> None:
        self.store = store
        self.audit = audit
        self.scope = EventScope(store.pool)
        self.https = https
        self.cookie = session_cookie_name(https)

    async def session_organiser(self, request: Request) -> Organiser | None:
        session_id = request.cookies.get(self.cookie)
        return await self.store.session_organiser(session_id) if session_id else None

    async def refuse(
        self,
        request: Request,
        who: Organiser,
        message: str,
        *,
        event_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Audit the refusal, then answer 403 (a Dutch page for pages, JSON for the API)."""
        path = _without_secrets(request)
        log.warning("organiser refused", extra={"ctx_account": who.account_id, "ctx_path": path})
        await self.audit.record(
            who,
            "access",
            outcome="denied",
            event_id=event_id,
            detail={"method": request.method, "path": path, **(detail or {})},
        )
        if getattr(request.state, "organiser_page", False):
            raise Forbidden(message)
        raise HTTPException(403, message)

    async def check_event(self, request: Request, who: Organiser, event_id: uuid.UUID) -> None:
        """403 (and an audit row) unless the event is in ``who``'s scope."""
        if who.everywhere:
            return
        if not who.covers(event_id, await self.scope.regions(event_id)):
            await self.refuse(request, who, OUT_OF_SCOPE, event_id=event_id)

    async def check_regions(self, request: Request, who: Organiser, regions: Iterable[str]) -> None:
        """403 (and an audit row) unless every region is ``who``'s: what a regional leader
        gives an event or a mailing's audience. No region at all means national: not theirs."""
        wanted = sorted(set(regions))
        if not who.covers_regions(wanted):
            await self.refuse(request, who, OUT_OF_REGIONS, detail={"regions": wanted})

    async def require(self, request: Request) -> Organiser:
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

    async def require_page(self, request: Request) -> Organiser:
        request.state.organiser_page = True
        organiser = await self.session_organiser(request)
        if organiser is None:
            raise LoginRequired(login_url(request))
        return organiser

    async def log_in(
        self, response: Response, organiser: Organiser, token_id: int | None = None
    ) -> None:
        session_id = await self.store.start_session(organiser, token_id)
        log.info(
            "organiser logged in",
            extra={"ctx_account": organiser.account_id, "ctx_token_id": token_id},
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
            account = organiser.account_id if organiser else None
            log.info("organiser logged out", extra={"ctx_account": account})
        response.delete_cookie(
            self.cookie, path="/", httponly=True, samesite="lax", secure=self.https
        )


# Path parameters that are personal links or credentials (a check-in QR token, a sign-in
# link's secret): never written to a log line or the audit log.
_SECRET_PARAMS = ("token", "secret")


def _without_secrets(request: Request) -> str:
    """The request's path with its secret parameters named, not shown."""
    path = request.url.path
    for name in _SECRET_PARAMS:
        value = request.path_params.get(name)
        if value:
            path = path.replace(str(value), "{" + name + "}")
    return path


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


def access_of(request: Request) -> OrganiserAccess:
    """The app's organiser access (set up by ``stolive_shared.web.service_app``)."""
    access: OrganiserAccess = request.app.state.organisers
    return access


async def require_organiser(request: Request) -> Organiser:
    """API routes: the organiser, else 401 (no credential) or 403 (a wrong token)."""
    return await access_of(request).require(request)


async def require_organiser_page(request: Request) -> Organiser:
    """Organiser pages: the organiser, else a redirect to the login page."""
    return await access_of(request).require_page(request)


def _needs(capability: Capability, *, page: bool, event: bool) -> Any:
    signed_in = require_organiser_page if page else require_organiser

    # A default, not ``Annotated``: the annotations are strings (``from __future__``), and
    # FastAPI could not find the local ``signed_in`` by name.
    async def allowed(request: Request, who: Organiser = Depends(signed_in)) -> Organiser:  # noqa: B008
        access = access_of(request)
        if not who.may(capability):
            await access.refuse(request, who, OUT_OF_ROLE, detail={"needs": str(capability)})
        if event:
            try:
                event_id = uuid.UUID(str(request.path_params["event_id"]))
            except ValueError:
                raise HTTPException(404, "Evenement niet gevonden") from None
            await access.check_event(request, who, event_id)
        return who

    return Depends(allowed)


def needs(capability: Capability, *, event: bool = False) -> Any:
    """API routes: ``Annotated[Organiser, needs(Capability.X)]``; ``event=True`` also checks
    the path's ``event_id`` against the organiser's scope."""
    return _needs(capability, page=False, event=event)


def needs_page(capability: Capability, *, event: bool = False) -> Any:
    """Pages: as ``needs``, with the login redirect and a Dutch refusal page."""
    return _needs(capability, page=True, event=event)


def public_route() -> None:
    """Marks a route meant for everyone (``PUBLIC``)."""


OrganiserDep = Annotated[Organiser, Depends(require_organiser)]
OrganiserPageDep = Annotated[Organiser, Depends(require_organiser_page)]
PUBLIC = Depends(public_route)
