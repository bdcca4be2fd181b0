"""Getting into the organiser console and managing who may: sign-in, accounts, the audit log.

Sign-in is by an e-mailed one-time link: the login page asks for an address, the
notifications service mails a link to the account with that address (and says nothing about
whether there is one), the link opens a page whose button starts the session. The button is
there because mail scanners open links: a GET never uses the link up. The link may be opened
in another browser than the one that asked (the organiser asks on a laptop, opens the mail on
a phone): it works once, for ``SIGN_IN_LINK_MINUTES``, and only the mailbox's owner has it.
A token (for scripts) still signs a browser in too, with the token's account and role.

The programme team manages accounts and reads the audit log here; every change is audited.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sto_events.api.deps import ServiceDep
from sto_events.api.rendering import pages
from sto_events.repository import EventFilter
from stolive_shared.errors import DependencyUnavailable
from stolive_shared.internal import InternalClient
from stolive_shared.organisers.audit import ACTION_NL
from stolive_shared.organisers.roles import (
    ROLE_NL,
    ROLES,
    Capability,
    Organiser,
    account_problems,
)
from stolive_shared.organisers.web import (
    NEXT_PARAM,
    PUBLIC,
    OrganiserAccess,
    access_of,
    needs_page,
    safe_next,
)
from stolive_shared.pages import base_path
from stolive_shared.ratelimit import Take, client_address
from stolive_shared.urls import ConsoleUrls

log = logging.getLogger(__name__)
router = APIRouter(prefix="/organiser", include_in_schema=False)

AccountsAdmin = Annotated[Organiser, needs_page(Capability.ACCOUNTS)]
AuditReader = Annotated[Organiser, needs_page(Capability.READ_AUDIT)]
LINK_SENT = (
    "Als er een organisatorsaccount bij dit adres hoort, staat er nu een inloglink in die "
    "mailbox. De link werkt één keer en is {minutes} minuten geldig."
)


def home(request: Request, who: Organiser) -> str:
    """Where an organiser starts: check-in staff at their check-in lists, others at events."""
    if who.may(Capability.VIEW_EVENTS):
        return f"{base_path(request)}/organiser/"
    return ConsoleUrls(request.app.state.parts.urls.base).registrations()


# -- signing in and out ------------------------------------------------------------------------


def _login_page(
    request: Request, *, status_code: int = 200, error: str | None = None, notice: str = ""
) -> HTMLResponse:
    return pages.render(
        request,
        "organiser/login.html",
        status_code,
        error=error,
        notice=notice,
        next_path=safe_next(request.query_params.get(NEXT_PARAM), ""),
    )


@router.get("/inloggen", response_class=HTMLResponse, dependencies=[PUBLIC])
async def login_form(request: Request) -> HTMLResponse:
    page = _login_page(request)
    who = await access_of(request).session_organiser(request)
    if who is not None:
        page = _login_page(request, notice=f"Je bent al ingelogd als {who.name}.")
    return page


async def _limited(request: Request) -> Response | None:
    parts = request.app.state.parts
    wait = await parts.limits.retry_after(Take(parts.login_limit, client_address(request.scope)))
    if not wait:
        return None
    log.warning("organiser logins limited", extra={"ctx_client": client_address(request.scope)})
    page = pages.message(
        request,
        "Even geduld",
        "Te veel inlogpogingen vanaf dit adres. Wacht even en probeer het opnieuw.",
        429,
    )
    page.headers["Retry-After"] = str(wait)
    return page


@router.post("/inloggen", response_class=HTMLResponse, dependencies=[PUBLIC])
async def login(request: Request) -> Response:
    """An address asks for a sign-in link; a token signs in at once."""
    form = await pages.form(request)
    if (limited := await _limited(request)) is not None:
        return limited
    access = access_of(request)
    email = str(form.get("email", "")).strip()
    token = str(form.get("token", "")).strip()
    next_path = safe_next(str(form.get(NEXT_PARAM, "")), "")
    if email:
        return await _send_link(request, email)
    owner = await access.store.token_owner(token) if token else None
    if owner is None:
        if token:
            log.warning(
                "organiser login refused", extra={"ctx_client": client_address(request.scope)}
            )
        return _login_page(
            request,
            status_code=422 if not token else 403,
            error="Vul je e-mailadres in." if not token else "Deze sleutel klopt niet.",
        )
    return await _start(request, access, owner.organiser, next_path, owner.token_id)


async def _send_link(request: Request, email: str) -> Response:
    """The same answer, at the same speed, whether or not the address has an account: the
    notifications service is asked in the background (and retries the mail itself)."""
    if len(email) > 254 or "@" not in email:
        return _login_page(request, status_code=422, error="Vul een geldig e-mailadres in.")
    task = asyncio.create_task(_ask_for_link(request.app.state.parts.notifications, email))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)
    minutes = round(access_of(request).store.sign_in_valid.total_seconds() / 60)
    return _login_page(request, notice=LINK_SENT.format(minutes=minutes))


# Sign-in mails asked for and not yet handed to the notifications service (kept referenced).
_PENDING: set[asyncio.Task[None]] = set()


async def _ask_for_link(notifications: InternalClient, email: str) -> None:
    try:
        await notifications.post("/internal/organiser-sign-in", {"email": email})
    except DependencyUnavailable:
        log.warning("sign-in link not sent: the notifications service did not answer")


async def _start(
    request: Request,
    access: OrganiserAccess,
    who: Organiser,
    next_path: str,
    token_id: int | None = None,
) -> Response:
    response = RedirectResponse(next_path or home(request, who), status_code=303)
    await access.log_in(response, who, token_id)
    await access.audit.record(who, "sign_in", detail={"by": "token" if token_id else "link"})
    return response


@router.get("/inloggen/link/{secret}", response_class=HTMLResponse, dependencies=[PUBLIC])
async def sign_in_link(secret: str, request: Request) -> HTMLResponse:
    """The link from the e-mail: a button, so that opening the link alone uses nothing up."""
    return pages.render(request, "organiser/sign_in_link.html", secret=secret)


@router.post("/inloggen/link/{secret}", response_class=HTMLResponse, dependencies=[PUBLIC])
async def use_sign_in_link(secret: str, request: Request) -> Response:
    await pages.form(request)
    if (limited := await _limited(request)) is not None:
        return limited
    access = access_of(request)
    who = await access.store.use_sign_in_link(secret)
    if who is None:
        return pages.message(
            request,
            "Inloglink niet geldig",
            "Deze inloglink is verlopen of al gebruikt. Vraag op de inlogpagina een nieuwe aan.",
            410,
        )
    return await _start(request, access, who, "")


@router.get("/uitloggen", response_class=HTMLResponse, dependencies=[PUBLIC])
async def logout_form(request: Request) -> HTMLResponse:
    return pages.render(request, "organiser/logout.html")


@router.post("/uitloggen", dependencies=[PUBLIC])
async def logout(request: Request) -> Response:
    await pages.form(request)  # the CSRF check: no one can log another out cross-site
    response = RedirectResponse(f"{base_path(request)}/organiser/inloggen", status_code=303)
    await access_of(request).log_out(request, response)
    return response


# -- accounts ---------------------------------------------------------------------------------


async def _accounts_page(
    request: Request,
    service: ServiceDep,
    who: Organiser,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: Mapping[str, object] | None = None,
    notice: str = "",
    new_token: str = "",
) -> HTMLResponse:
    store = access_of(request).store
    accounts = await store.accounts()
    return pages.render(
        request,
        "organiser/accounts.html",
        status_code,
        organiser=who,
        accounts=accounts,
        tokens={a.account_id: await store.tokens(a.account_id) for a in accounts},
        regions=await service.regions(),
        events=await service.list_events(EventFilter(public_only=False, limit=1000)),
        roles=ROLES,
        role_nl=ROLE_NL,
        errors=errors or {},
        form=form or {"role": "regional"},
        notice=notice,
        new_token=new_token,
    )


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request, service: ServiceDep, who: AccountsAdmin) -> Response:
    return await _accounts_page(request, service, who)


@router.post("/accounts", response_class=HTMLResponse)
async def save_account(request: Request, service: ServiceDep, who: AccountsAdmin) -> Response:
    """Add an account, or change one (``account_id`` in the form)."""
    form = await pages.form(request)
    email, name = str(form.get("email", "")).strip(), str(form.get("name", "")).strip()
    role_typed = str(form.get("role", ""))
    regions = [str(r) for r in form.getlist("regions")]
    events = [str(e) for e in form.getlist("events")]
    known = [r.code for r in await service.regions()]
    problems = account_problems(email, name, role_typed, regions, events, known)
    if problems:
        typed = {"email": email, "name": name, "role": role_typed, "regions": regions}
        return await _accounts_page(
            request, service, who, status_code=422, errors=problems, form=typed | {"events": events}
        )
    role = next(r for r in ROLES if r == role_typed)
    regions = regions if role == "regional" else []
    event_ids = [uuid.UUID(e) for e in events] if role == "checkin" else []
    access = access_of(request)
    account_id = str(form.get("account_id", ""))
    if account_id.isdigit():
        saved = await access.store.change_account(
            int(account_id), name=name, role=role, regions=regions, events=event_ids
        )
        if saved is None:
            return pages.message(request, "Niet gevonden", "Dit account bestaat niet meer.", 404)
        action, notice = "account_changed", f"Account van {saved.name} gewijzigd."
    else:
        known_addresses = {a.email.lower() for a in await access.store.accounts()}
        action = "account_changed" if email.lower() in known_addresses else "account_added"
        saved = await access.store.add_account(email, name, role, regions=regions, events=event_ids)
        notice = f"Account van {saved.name} opgeslagen."
    await access.audit.record(
        who,
        action,
        subject=f"account:{saved.account_id}",
        detail={"role": role, "regions": regions, "events": [str(e) for e in event_ids]},
    )
    return await _accounts_page(request, service, who, notice=notice)


@router.post("/accounts/{account_id}/verwijderen", response_class=HTMLResponse)
async def remove_account(
    account_id: int, request: Request, service: ServiceDep, who: AccountsAdmin
) -> Response:
    await pages.form(request)
    if account_id == who.account_id:
        return await _accounts_page(
            request,
            service,
            who,
            status_code=409,
            errors={"form": "Je kunt je eigen account niet verwijderen."},
        )
    access = access_of(request)
    if not await access.store.remove_account(account_id):
        return pages.message(request, "Niet gevonden", "Dit account bestaat niet meer.", 404)
    await access.audit.record(who, "account_removed", subject=f"account:{account_id}")
    notice = "Account verwijderd; de sessies en sleutels ervan werken niet meer."
    return await _accounts_page(request, service, who, notice=notice)


@router.post("/accounts/{account_id}/sleutel", response_class=HTMLResponse)
async def make_token(
    account_id: int, request: Request, service: ServiceDep, who: AccountsAdmin
) -> Response:
    """A new API token for the account, shown once on the page that answers."""
    form = await pages.form(request)
    access = access_of(request)
    if await access.store.account(account_id) is None:
        return pages.message(request, "Niet gevonden", "Dit account bestaat niet meer.", 404)
    label = str(form.get("label", "")).strip()[:80] or "API"
    token = await access.store.create_token(account_id, label)
    await access.audit.record(
        who, "token_made", subject=f"account:{account_id}", detail={"label": label}
    )
    return await _accounts_page(request, service, who, new_token=token)


@router.post("/accounts/{account_id}/sleutels/{token_id}/intrekken", response_class=HTMLResponse)
async def revoke_token(
    account_id: int, token_id: int, request: Request, service: ServiceDep, who: AccountsAdmin
) -> Response:
    await pages.form(request)
    access = access_of(request)
    revoked = await access.store.revoke_tokens(account_id, token_id)
    if revoked:
        await access.audit.record(
            who, "token_revoked", subject=f"account:{account_id}", detail={"token": token_id}
        )
    notice = "Sleutel ingetrokken." if revoked else "Deze sleutel was al ingetrokken."
    return await _accounts_page(request, service, who, notice=notice)


# -- the audit log ----------------------------------------------------------------------------


@router.get("/logboek", response_class=HTMLResponse)
async def audit_page(request: Request, who: AuditReader) -> Response:
    params = request.query_params
    action = params.get("handeling") if params.get("handeling") in ACTION_NL else None
    actor = (params.get("wie") or "").strip()[:100] or None
    before = params.get("voor", "")
    event = params.get("evenement", "")
    try:
        event_id = uuid.UUID(event) if event else None
    except ValueError:
        event_id = None
    rows = await access_of(request).audit.rows(
        limit=100,
        before_id=int(before) if before.isdigit() else None,
        action=action,
        actor=actor,
        event_id=event_id,
    )
    days = request.app.state.parts.runtime.settings.audit_retention_days
    return pages.render(
        request,
        "organiser/audit.html",
        organiser=who,
        rows=rows,
        actions=ACTION_NL,
        chosen={"handeling": action or "", "wie": actor or "", "evenement": event},
        role_nl=ROLE_NL,
        retention_days=days,
    )
