"""What the events service's pages share: templates, links under the gateway prefix, CSRF.

The prefix and the double-submit CSRF token are the shared ones (``stolive_shared.pages``);
this module adds the events' labels and its caching rule: organiser pages are never stored.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from stolive_shared.pages import FormPages, base_path
from stolive_shared.programme import KIND_NL
from stolive_shared.templating import make_templates

templates = make_templates(Path(__file__).parent.parent / "templates")
templates.env.globals["KIND_NL"] = KIND_NL

pages = FormPages(
    templates,
    cookie="sto_events_csrf",
    cache_control=lambda name: "no-store" if "organiser" in name else "no-cache",
)


def public_url(request: Request, path: str) -> str:
    """An absolute link for feeds and calendars, from the configured public address."""
    public_base: str = request.app.state.parts.urls.base
    return f"{public_base}{base_path(request)}{path}"
