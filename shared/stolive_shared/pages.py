"""What every service's Dutch web pages share: the path prefix, and CSRF-safe forms.

Forms use a double-submit token: a random value in a SameSite=Lax, HttpOnly cookie scoped to
the service's prefix, which must come back in a hidden form field. A cross-site form post
carries neither the cookie (SameSite) nor the value (the other site cannot read it).

``FormPages`` binds one set of pages (templates and their cookie) to these helpers, with the
message page every service shows for "not found", "expired form" and the like.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData


def base_path(request: Request) -> str:
    """The prefix the gateway or Ingress serves this service under, e.g. '/registrations'."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def csrf_token(request: Request, cookie: str) -> str:
    """The visitor's token: the one in their cookie, or a new one."""
    return request.cookies.get(cookie) or secrets.token_urlsafe(24)


def csrf_ok(request: Request, cookie: str, form_token: object) -> bool:
    """True when the form sent back the value of the visitor's cookie."""
    expected = request.cookies.get(cookie)
    if not expected or not isinstance(form_token, str):
        return False
    return secrets.compare_digest(expected.encode(), form_token.encode())


def render_page(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page (without forms) with ``base``, the service's prefix, in its context."""
    return templates.TemplateResponse(
        request, name, {"base": base_path(request), **context}, status_code=status_code
    )


def render_form_page(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    *,
    cookie: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page with ``base`` and ``csrf_token`` in its context and the token's cookie."""
    token = csrf_token(request, cookie)
    response = render_page(
        templates, request, name, status_code=status_code, csrf_token=token, **context
    )
    response.set_cookie(
        cookie, token, httponly=True, samesite="lax", path=base_path(request) or "/"
    )
    return response


FORM_EXPIRED = "Laad de pagina opnieuw en probeer het nog eens."


class ExpiredForm(Exception):
    """A form came back without the visitor's token. ``stolive_shared.web`` answers it with
    ``response``, the 403 page, the way FastAPI answers an ``HTTPException``."""

    def __init__(self, response: HTMLResponse) -> None:
        super().__init__("form without its CSRF token")
        self.response = response


class FormPages:
    """One set of pages: their templates, their CSRF cookie and their ``message.html``.

    ``cache_control`` gives a page's ``Cache-Control`` header from its template name, for
    services whose pages caches must treat differently (none is set without it);
    ``expired_text`` is what the 403 page says to a visitor whose form lost its token.
    """

    def __init__(
        self,
        templates: Jinja2Templates,
        cookie: str,
        *,
        cache_control: Callable[[str], str] | None = None,
        expired_text: str = FORM_EXPIRED,
    ) -> None:
        self.templates = templates
        self.cookie = cookie
        self._cache_control = cache_control
        self._expired_text = expired_text

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        response = render_form_page(
            self.templates, request, name, cookie=self.cookie, status_code=status_code, **context
        )
        if self._cache_control is not None:
            response.headers["Cache-Control"] = self._cache_control(name)
        return response

    def csrf_ok(self, request: Request, form_token: object) -> bool:
        return csrf_ok(request, self.cookie, form_token)

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token checks out; else ``ExpiredForm``."""
        form = await request.form()
        if not self.csrf_ok(request, form.get("csrf_token")):
            raise ExpiredForm(self.expired_form(request))
        return form

    def message(
        self, request: Request, heading: str, text: str, status_code: int = 200
    ) -> HTMLResponse:
        return self.render(request, "message.html", status_code, heading=heading, message=text)

    def expired_form(self, request: Request) -> HTMLResponse:
        """403: the form came back without the visitor's token (expired, or posted elsewhere)."""
        return self.message(request, "Formulier verlopen", self._expired_text, 403)
