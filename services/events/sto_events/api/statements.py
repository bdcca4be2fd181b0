"""The privacy statement and the accessibility statement: Dutch pages, linked from the footer
of every page of every service (``stolive_shared/templates/_footer.html``) and from the
consent boxes. Their facts (controller, contacts, versions, retention periods) come from the
settings (``ServiceSettings``), never from the templates.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from sto_events.api.deps import PartsDep
from sto_events.api.rendering import templates
from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import render_page
from stolive_shared.settings import ServiceSettings

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])


def statement_facts(settings: ServiceSettings) -> dict[str, Any]:
    """What the statements say that an operator decides."""
    return {
        "controller": settings.privacy_controller,
        "privacy_contact": settings.privacy_contact_email,
        "accessibility_contact": settings.accessibility_contact_email,
        "privacy_version": settings.privacy_statement_version,
        "accessibility_date": settings.accessibility_statement_date,
        "website": settings.public_base_url.rstrip("/"),
        "registration_days": settings.registration_retention_days,
        "certificate_days": settings.certificate_retention_days,
        "unconfirmed_days": settings.unconfirmed_subscription_days,
        "mail_days": settings.mail_content_retention_days,
    }


@router.get("/privacyverklaring", response_class=HTMLResponse)
async def privacy_statement(request: Request, parts: PartsDep) -> HTMLResponse:
    facts = statement_facts(parts.runtime.settings)
    return render_page(templates, request, "privacy.html", **facts)


@router.get("/toegankelijkheidsverklaring", response_class=HTMLResponse)
async def accessibility_statement(request: Request, parts: PartsDep) -> HTMLResponse:
    facts = statement_facts(parts.runtime.settings)
    return render_page(templates, request, "accessibility.html", **facts)
