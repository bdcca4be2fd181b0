"""HTTP clients for calls between the platform's parts: built here, once, and stateless.

httpx's ``AsyncClient`` keeps a cookie jar: every ``Set-Cookie`` one answer carries is stored
and sent with every later request of that client, whoever makes it. A client shared by many
callers (the gateway, a service calling another) must keep nothing of any of them, so these
clients refuse every cookie, read no credentials or proxies from the environment (``.netrc``
would add an ``Authorization`` header to every request) and follow no redirects.
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx


class _RefuseEveryCookie(DefaultCookiePolicy):
    """A cookie policy under which a jar stores nothing and sends nothing."""

    def set_ok(self, *_cookie_and_request: Any) -> bool:
        return False

    def return_ok(self, *_cookie_and_request: Any) -> bool:
        return False


def stateless_client(
    *, timeout: float | httpx.Timeout, base_url: str = "", **options: Any
) -> httpx.AsyncClient:
    """An ``AsyncClient`` that remembers nothing between requests: no cookies, no auth."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        cookies=CookieJar(policy=_RefuseEveryCookie()),
        follow_redirects=False,
        trust_env=False,
        **options,
    )
