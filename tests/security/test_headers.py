"""Security headers on every page, found by crawling the platform through its one address in a
real browser, anonymous and as an organiser: a Content-Security-Policy without inline script
(the browser reports no violation, so every script of ours runs by its nonce), no framing but
of the sign-up form by the sites allowed, nosniff, a Referrer-Policy that keeps personal links
at home, a Permissions-Policy. Over https: HSTS, and the session cookie's ``__Host-`` name.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urldefrag, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from sto_events.bootstrap import DEFINITION as EVENTS
from sto_events.config import EventsSettings
from stolive.broker import free_port
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.runtime import Runtime
from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event, sign_up
from tests.support import organiser_token

PARTNER_PORT = free_port()
PARTNER = f"http://127.0.0.1:{PARTNER_PORT}"  # a regional site allowed to embed the form
PLATFORM_ENV = {"FRAME_ANCESTORS": PARTNER}
EMBEDDABLE = ("/aanmelden", "/ontvangen")
MAX_PAGES = 60


def header_problems(url: str, headers: dict[str, str]) -> list[str]:
    problems = []
    policy = headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    script = directives.get("script-src", [])
    if not any(source.startswith("'nonce-") for source in script) or "'unsafe-inline'" in script:
        problems.append(f"script-src {script}")
    if directives.get("object-src") != ["'none'"] or directives.get("base-uri") != ["'none'"]:
        problems.append("object-src or base-uri")
    framing = directives.get("frame-ancestors")
    embeddable = urlsplit(url).path.endswith(EMBEDDABLE)
    if framing != ([PARTNER] if embeddable else ["'none'"]):
        problems.append(f"frame-ancestors {framing}")
    if not embeddable and headers.get("x-frame-options") != "DENY":
        problems.append("x-frame-options")
    if headers.get("x-content-type-options") != "nosniff":
        problems.append("nosniff")
    if headers.get("referrer-policy") != "strict-origin-when-cross-origin":
        problems.append("referrer-policy")
    if "camera=()" not in headers.get("permissions-policy", ""):
        problems.append("permissions-policy")
    return problems


def is_page(url: str) -> bool:
    """A link to a page, not to a download or the JSON API (their headers are checked by
    the service tests; a browser would download them)."""
    path = urlsplit(url).path
    return "/api/" not in path and not path.endswith((".csv", ".ics", ".svg", ".json"))


async def crawl(context: Any, base: str, starts: list[str]) -> dict[str, list[str]]:
    """Visit pages reachable by links from ``starts`` on this site; each HTML page's header
    problems and the CSP violations the browser reported on it."""
    page = await context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    seen: dict[str, list[str]] = {}
    queue = [base + start for start in starts]
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        violations.clear()
        response = await page.goto(url)
        await page.wait_for_load_state("load")
        final = page.url
        if response is None or "text/html" not in (await response.all_headers()).get(
            "content-type", ""
        ):
            seen[url] = []
            continue
        problems = header_problems(final, await response.all_headers())
        await asyncio.sleep(0)  # let console messages of the load arrive
        problems += [f"CSP violation: {text}" for text in violations]
        seen[url] = problems
        for href in await page.eval_on_selector_all(
            "a[href]", "links => links.map(link => link.href)"
        ):
            target, _ = urldefrag(href)
            if target.startswith(base) and target not in seen and is_page(target):
                queue.append(target)
    await page.close()
    return seen


async def test_every_page_anonymous_and_organiser_carries_the_security_headers(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, title="Koppen op elke pagina")
    await sign_up(platform, event_id, "koppen@school.nl")
    base = platform.stack.config.public_base_url
    manage = (await platform.manage_link("koppen@school.nl")).removeprefix(base)
    anonymous = await browser.new_context()
    organiser = await browser.new_context()
    try:
        public = await crawl(
            anonymous,
            base,
            ["/", "/events/agenda", "/notifications/nieuwsbrief", manage,
             f"/events/watch/{event_id}", "/events/organiser/inloggen", "/mail/"],
        )  # fmt: skip
        await platform.log_in(await organiser.new_page())
        private = await crawl(
            organiser,
            base,
            ["/events/organiser/", "/registrations/organisator/",
             "/notifications/organisator/mailings", "/analytics/dashboard",
             f"/analytics/dashboard/{event_id}",
             f"/registrations/organisator/evenementen/{event_id}"],
        )  # fmt: skip
    finally:
        await anonymous.close()
        await organiser.close()
    problems = {url: found for url, found in {**public, **private}.items() if found}
    assert problems == {}
    figures(
        f"headers: {len(public)} public and {len(private)} organiser pages crawled through the "
        "gateway in Chromium: CSP with nonces (0 violations), framing, nosniff, Referrer-Policy"
        " and Permissions-Policy on every one"
    )
    assert len(public) >= 8
    assert len(private) >= 8


class PartnerPage(BaseHTTPRequestHandler):
    """A regional site's page that frames the platform's sign-up form and its login page."""

    frames: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        body = "".join(
            f'<iframe title="frame {n}" src="{src}" width="600" height="400"></iframe>'
            for n, src in enumerate(self.frames)
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def partner_site() -> Iterator[type[PartnerPage]]:
    server = ThreadingHTTPServer(("127.0.0.1", PARTNER_PORT), PartnerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield PartnerPage
    server.shutdown()
    server.server_close()


async def test_only_the_sign_up_form_may_be_framed_and_only_by_the_sites_allowed(
    platform: Platform, browser: Any, partner_site: type[PartnerPage]
) -> None:
    event_id = await published_event(platform, title="Ingebed formulier")
    base = platform.stack.config.public_base_url
    form = f"{base}/registrations/events/{event_id}/aanmelden"
    partner_site.frames = [form, f"{base}/events/organiser/inloggen"]
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(PARTNER)
        embedded = page.frame_locator('iframe[title="frame 0"]')
        await embedded.get_by_role("button", name="Aanmelden", exact=True).wait_for()
        login = page.frame_locator('iframe[title="frame 1"]')
        assert await login.get_by_label("Organisatorsleutel").count() == 0

        # The same form, framed by a site not on the list (another origin): blocked.
        other = await context.new_page()
        await other.set_content(f'<iframe title="elders" src="{form}"></iframe>')
        elsewhere = other.frame_locator('iframe[title="elders"]')
        assert await elsewhere.get_by_role("button", name="Aanmelden", exact=True).count() == 0
    finally:
        await context.close()


@pytest.fixture
async def https_events_app(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The events service as production runs it: https public address, production secrets."""
    await apply_migrations(database_url, "events", [EVENTS.migrations])
    settings = EventsSettings(
        database_url=database_url,
        public_base_url="https://live.sterktechniekonderwijs.nl",
        environment="production",
        link_secret=SecretStr("l" * 40),
        session_secret=SecretStr("s" * 40),
        data_dir=tmp_path,
    )
    settings.check_production_ready()
    pool = await create_pool(database_url, "events", max_size=2)
    app = EVENTS.app(Runtime(settings=settings, pool=pool))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="https://live.sterktechniekonderwijs.nl"
        ) as client:
            yield client, await organiser_token(app.state.organisers.store, "https-test")
    finally:
        await pool.close()


async def test_over_https_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent(
    https_events_app: tuple[httpx.AsyncClient, str],
) -> None:
    client, token = https_events_app
    form = await client.get("/organiser/inloggen")
    assert form.headers["strict-transport-security"].startswith("max-age=31536000")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = await client.post(
        "/organiser/inloggen",
        data={"csrf_token": csrf, "token": token},
    )
    assert answer.status_code == 303
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith("__Host-sto_session=")
    )
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=lax"):
        assert attribute in cookie
    assert "Domain" not in cookie
    # API docs are off in production.
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert (await client.get(path)).status_code == 404, path
