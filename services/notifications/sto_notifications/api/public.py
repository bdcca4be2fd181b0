"""Public pages (Dutch): subscribe, confirm the subscription, unsubscribe, read a mailing online.

Forms carry the shared double-submit CSRF token (``stolive_shared.pages``). The subscribe
form also has a bot guard: a hidden field people leave empty, and a signed start time (a post
faster than a person can fill the form is refused).

Confirming and unsubscribing go through a button (POST), never a bare GET: mail scanners
follow links. The unsubscribe URL also takes RFC 8058 one-click POSTs
(``List-Unsubscribe=One-Click``), which come without cookies: the signed token in the URL is
the authority there, and unsubscribing is harmless to repeat, so it needs no CSRF token.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, Signer

from sto_notifications import domain
from sto_notifications.api.deps import MailingsDep, PartsDep
from sto_notifications.domain import NewsletterWish
from sto_notifications.service import MailingUnknown
from stolive_shared.links import NEWSLETTER_CONFIRMATION, UNSUBSCRIBE
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import FormPages, base_path
from stolive_shared.programme import PROFILES, ROLES
from stolive_shared.ratelimit import Take, client_address
from stolive_shared.templating import make_templates

if TYPE_CHECKING:
    from sto_notifications.bootstrap import Notifications

templates = make_templates(Path(__file__).parent.parent / "templates" / "pages")
pages = FormPages(
    templates,
    cookie="sto_csrf_nieuwsbrief",
    expired_text="Het formulier is verlopen. Vul het opnieuw in.",
)


router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])


def _signer(parts: Notifications) -> Signer:
    """Signs the moment the subscribe form was shown (the bot guard's clock)."""
    return Signer(parts.runtime.settings.link_key(), salt="subscribe-form")


async def form_page(
    request: Request,
    parts: Notifications,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    return pages.render(
        request,
        "subscribe.html",
        status_code,
        form=form,
        errors=errors,
        roles=ROLES,
        profiles=PROFILES,
        regions=await parts.regions.regions(),
        started=_signer(parts).sign(f"{time.time():.3f}").decode(),
    )


@router.get("/nieuwsbrief", response_class=HTMLResponse)
async def subscribe_form(parts: PartsDep, request: Request) -> HTMLResponse:
    return await form_page(request, parts, {}, {})


@router.post("/nieuwsbrief", response_class=HTMLResponse)
async def subscribe(parts: PartsDep, request: Request) -> HTMLResponse:
    form = await pages.form(request)
    wait = await parts.limits.retry_after(
        Take(parts.subscribe_limit, client_address(request.scope))
    )
    if wait:
        page = pages.message(request, "Even geduld", _TOO_MANY, 429)
        page.headers["Retry-After"] = str(wait)
        return page
    min_fill_s = parts.runtime.settings.subscribe_min_fill_s
    started = form.get("started")
    if form.get("website") or not _filled_by_a_person(_signer(parts), started, min_fill_s):
        # Bots get the same answer as people: nothing to learn, nothing sent.
        return pages.message(request, "Bijna klaar", _CHECK_MAILBOX)
    email = str(form.get("email") or "").strip()
    name = str(form.get("name") or "")
    role = str(form.get("role") or "")
    region_code = str(form.get("region_code") or "").strip().upper()
    interests = [str(v) for v in form.getlist("interests")]
    values: dict[str, Any] = {
        "name": name,
        "email": email,
        "role": role,
        "region_code": region_code,
        "interests": interests,
    }
    errors: dict[str, str] = {}
    if not domain.is_valid_address(email):
        errors["email"] = "Vul een geldig e-mailadres in, zoals naam@school.nl."
    if role and role not in ROLES:
        errors["role"] = "Kies je rol uit de lijst."
    if any(i not in PROFILES for i in interests):
        errors["interests"] = "Kies alleen profielen uit de lijst."
    if errors:
        return await form_page(request, parts, values, errors, 422)
    await parts.mailings.subscribe(
        parts.reactions,
        NewsletterWish(
            email=email,
            name=name,
            role=role or None,
            region_code=region_code or None,
            interests=tuple(interests),
            source="subscribe_form",
            privacy_version=parts.runtime.settings.privacy_statement_version,
        ),
    )
    return pages.message(request, "Bijna klaar", _CHECK_MAILBOX)


@router.get("/nieuwsbrief/bevestigen/{token}", response_class=HTMLResponse)
async def confirm_page(mailings: MailingsDep, token: str, request: Request) -> HTMLResponse:
    if not mailings.signed_by_us(NEWSLETTER_CONFIRMATION, token):
        return _broken_link(request)
    return pages.render(
        request,
        "confirm.html",
        heading="Aanmelding bevestigen",
        message="Bevestig dat je de nieuwsbrief van Sterk Techniekonderwijs wilt ontvangen.",
        button="Ja, ik wil de nieuwsbrief ontvangen",
        action=f"{base_path(request)}/nieuwsbrief/bevestigen/{token}",
    )


@router.post("/nieuwsbrief/bevestigen/{token}", response_class=HTMLResponse)
async def confirm(mailings: MailingsDep, token: str, request: Request) -> HTMLResponse:
    if not await mailings.confirm_subscription(token):
        return pages.message(
            request,
            "Link werkt niet",
            "Deze link is ongeldig of je aanmelding bestaat niet meer. Meld je opnieuw aan.",
            404,
        )
    return pages.message(
        request, "Aanmelding bevestigd", "Dank je wel. Je ontvangt voortaan onze nieuwsbrief."
    )


@router.get("/afmelden/{token}", response_class=HTMLResponse)
async def unsubscribe_page(mailings: MailingsDep, token: str, request: Request) -> HTMLResponse:
    if not mailings.signed_by_us(UNSUBSCRIBE, token):
        return _broken_link(request)
    return pages.render(
        request,
        "confirm.html",
        heading="Afmelden",
        message="Wil je geen nieuwsbrieven en mailings van Sterk Techniekonderwijs meer "
        "ontvangen? Berichten over je eigen aanmeldingen blijven komen.",
        button="Afmelden",
        action=f"{base_path(request)}/afmelden/{token}",
    )


@router.post("/afmelden/{token}")
async def unsubscribe(mailings: MailingsDep, token: str, request: Request) -> Response:
    if not await mailings.unsubscribe(token):
        return pages.message(request, "Link werkt niet", "Deze afmeldlink is ongeldig.", 404)
    return pages.message(
        request,
        "Je bent afgemeld",
        "Je ontvangt geen nieuwsbrieven en mailings meer van ons.",
    )


@router.get("/mailings/{mailing_id}/online", response_class=HTMLResponse)
async def online(mailings: MailingsDep, mailing_id: uuid.UUID, request: Request) -> HTMLResponse:
    try:
        return HTMLResponse(await mailings.web_version(mailing_id))
    except MailingUnknown:
        return pages.message(request, "Niet gevonden", "Deze nieuwsbrief bestaat niet.", 404)


def _broken_link(request: Request) -> HTMLResponse:
    return pages.message(
        request, "Link werkt niet", "Deze link is ongeldig. Gebruik de link uit je e-mail.", 404
    )


_TOO_MANY = "Te veel aanmeldingen vanaf dit adres. Wacht even en probeer het opnieuw."
_CHECK_MAILBOX = (
    "Kijk in je mailbox: we hebben je een e-mail gestuurd om je aanmelding te bevestigen. "
    "Pas na je bevestiging ontvang je de nieuwsbrief."
)


def _filled_by_a_person(signer: Signer, started: object, min_fill_s: float) -> bool:
    """The form was shown by us (signed time) at least ``min_fill_s`` and at most a day ago."""
    if not isinstance(started, str):
        return False
    try:
        shown_at = float(signer.unsign(started))
    except (BadSignature, ValueError):
        return False
    return min_fill_s <= time.time() - shown_at <= 24 * 3600
