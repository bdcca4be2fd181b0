"""The privacy and accessibility statements, seen from outside: through the gateway, in a real
browser (Debian's Chromium).

The platform runs with statement settings no default has, so finding them on the pages shows
they come from the settings. Every public page of the four services (read from the apps'
routes, as the security suite lists them: a page added later is crawled without editing this
test) carries the footer with both statements, whose links work; and each passes the
accessibility checks the accessibility statement names (``ACCESSIBILITY_CHECK``, and axe-core's
serious and critical rules).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from stolive_shared.links import (
    CERTIFICATE,
    DATA_EXPORT,
    DATA_EXPORT_VALID_S,
    MANAGE,
    NEWSLETTER_CONFIRMATION,
    UNSUBSCRIBE,
    sign,
    sign_until,
    verify,
)
from tests.e2e.conftest import Platform
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.e2e.test_walking_skeleton import published_event, sign_up
from tests.security.routes import ServiceRoute, service_routes
from tests.support import serious_accessibility_violations

PLATFORM_ENV = {
    "PRIVACY_CONTROLLER": "Stichting Proefverantwoordelijke Techniek",
    "PRIVACY_CONTACT_EMAIL": "privacyvragen@proef.example.nl",
    "ACCESSIBILITY_CONTACT_EMAIL": "toegankelijk@proef.example.nl",
    "PRIVACY_STATEMENT_VERSION": "2031-04-05",
    "ACCESSIBILITY_STATEMENT_DATE": "2031-06-07",
    "REGISTRATION_RETENTION_DAYS": "123",
    "CERTIFICATE_RETENTION_DAYS": "1461",
    "UNCONFIRMED_SUBSCRIPTION_DAYS": "4",
    "MAIL_CONTENT_RETENTION_DAYS": "45",
}
# Generous: a loaded two-core machine renders slowly, and every wait is on a condition.
TIMEOUT_MS = 60_000

# Run in the page: what the accessibility statement says is checked on every public page.
ACCESSIBILITY_CHECK = """() => {
  const problems = [];
  const text = (element) => (element ? element.textContent.trim() : "");
  const describe = (element) => element.outerHTML.slice(0, 100);
  if (document.documentElement.getAttribute("lang") !== "nl") {
    problems.push("lang: <html> has no lang=\\"nl\\"");
  }
  const headings = document.querySelectorAll("h1").length;
  if (headings !== 1) { problems.push(`h1: ${headings} <h1> elements, not one`); }
  if (!document.querySelector("main, [role=main]")) { problems.push("main: no <main> landmark"); }
  for (const control of document.querySelectorAll("input, select, textarea")) {
    const type = (control.getAttribute("type") || "text").toLowerCase();
    if (control.tagName === "INPUT" && (type === "hidden" || type === "submit")) { continue; }
    const labelled = Array.from(control.labels || []).some((label) => text(label) !== "");
    const ariaLabel = (control.getAttribute("aria-label") || "").trim() !== "";
    const ids = (control.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    const labelledBy = ids.some((id) => text(document.getElementById(id)) !== "");
    if (!labelled && !ariaLabel && !labelledBy) {
      problems.push(`name: a form control without an accessible name: ${describe(control)}`);
    }
  }
  for (const image of document.querySelectorAll("img:not([alt])")) {
    problems.push(`alt: an image without alt: ${describe(image)}`);
  }
  for (const element of document.querySelectorAll("[tabindex]")) {
    if (parseInt(element.getAttribute("tabindex"), 10) > 0) {
      problems.push(`tabindex: a positive tabindex: ${describe(element)}`);
    }
  }
  return problems;
}"""

# Public routes that are not pages: data, feeds, probes, downloads and static files.
NOT_PAGES = ("/api/", "/metrics", "/healthz", "/readyz", "/calendar", "/static/")
DOWNLOADS = (".ics", ".svg", ".csv", ".json")


def public_page_routes() -> list[ServiceRoute]:
    """The GET routes anyone may open that are (or may be) pages, from the apps themselves."""
    return [
        route
        for route in service_routes()
        if route.access == "public"
        and route.method == "GET"
        and not any(part in route.path for part in NOT_PAGES)
        and not route.path.endswith(DOWNLOADS)
    ]


def page_urls(route: ServiceRoute, values: dict[str, list[str]]) -> list[str]:
    """The route's path through the gateway once for each value of its parameter (a route
    has at most one), with a real value and one that leads to a message page."""
    names = re.findall(r"\{(\w+)(?::\w+)?\}", route.path)
    assert len(names) <= 1, f"{route.path}: teach this test two parameters"
    if not names:
        return [route.url({})]
    name = names[0]
    key = f"{route.name}:{name}" if f"{route.name}:{name}" in values else name
    assert key in values, f"a new public page {route.path}: give this test a value for {name}"
    return [route.url({name: value}) for value in values[key]]


async def test_the_statements_state_the_facts_of_the_settings(
    platform: Platform, browser: Any
) -> None:
    base = platform.stack.config.public_base_url
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        answer = await page.goto(f"{base}/events/privacyverklaring")
        assert answer is not None
        assert answer.status == 200
        assert await page.get_by_role("heading", level=1).inner_text() == "Privacyverklaring"
        privacy = " ".join((await page.locator("main").inner_text()).split())
        for fact in (
            "Stichting Proefverantwoordelijke Techniek is de verwerkingsverantwoordelijke",
            "privacyvragen@proef.example.nl",
            "Versie 2031-04-05, vastgesteld op 5 april 2031",
            "Tot 123 dagen na de bijeenkomst",
            "blijft 1461 dagen werken (ongeveer 4 jaar)",
            "verwijderen we die na 4 dagen",
            "De inhoud van een e-mail 45 dagen",
            "Mijn gegevens",
            "Wis mijn gegevens",
            "Autoriteit Persoonsgegevens",
        ):
            assert fact in privacy, fact
        for right in ("Inzage", "Correctie", "Verwijdering", "Bezwaar"):
            assert right in privacy, right
        mail = page.locator('main a[href="mailto:privacyvragen@proef.example.nl"]')
        assert await mail.count() >= 1
        authority = page.get_by_role("link", name="Autoriteit Persoonsgegevens")
        assert await authority.get_attribute("href") == "https://www.autoriteitpersoonsgegevens.nl"

        answer = await page.goto(f"{base}/events/toegankelijkheidsverklaring")
        assert answer is not None
        assert answer.status == 200
        heading = await page.get_by_role("heading", level=1).inner_text()
        assert heading == "Toegankelijkheidsverklaring"
        accessibility = " ".join((await page.locator("main").inner_text()).split())
        for fact in (
            "Stichting Proefverantwoordelijke Techniek",
            base,  # the website the statement is about: the public address
            "WCAG 2.1",
            "EN 301 549",
            "voldoet gedeeltelijk",
            "toegankelijk@proef.example.nl",
            "7 juni 2031",
            "Bekende problemen",
        ):
            assert fact in accessibility, fact
    finally:
        await page.close()


async def test_every_public_page_has_the_footer_and_passes_the_accessibility_check(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    base = platform.stack.config.public_base_url
    webinar = await published_event(platform, title="Voettekst-webinar")
    meeting = await published_meeting(platform, "Voettekst-bijeenkomst Drenthe")
    await sign_up(platform, meeting, "voettekst@school.nl")
    manage = (await platform.manage_link("voettekst@school.nl")).rsplit("/", 1)[1]
    secret = platform.link_secret
    registration = verify(secret, MANAGE, manage)
    assert registration is not None
    someone = uuid.uuid4()
    values = {
        "event_id": [webinar, meeting, str(uuid.uuid4())],
        "code": ["drenthe", "onbekend"],
        "manage:token": [manage, "onbekend"],
        "confirm_page:token": [sign(secret, NEWSLETTER_CONFIRMATION, someone), "onbekend"],
        "unsubscribe_page:token": [sign(secret, UNSUBSCRIBE, someone), "onbekend"],
        # No attendance yet: the page that says so (a certificate is the same page filled in).
        "certificate:token": [sign(secret, CERTIFICATE, registration), "onbekend"],
        # The person's own data, as the link in the e-mail from their manage page opens it.
        "my_data:token": [
            sign_until(secret, DATA_EXPORT, registration, time.time() + DATA_EXPORT_VALID_S),
            "onbekend",
        ],
        # A mailing read online is the e-mail itself (templates/mailing, not a page of the
        # site); an unknown one is answered with the message page, which is.
        "mailing_id": [str(uuid.uuid4())],
        # An organiser's e-mailed sign-in link: the page with its button (used up only by it).
        "secret": ["onbekend-of-verlopen"],
    }
    routes = public_page_routes()
    urls = [base + url for route in routes for url in page_urls(route, values)]

    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    found: dict[str, list[str]] = {}
    footer_links: set[str] = set()
    pages = 0
    try:
        for url in urls:
            answer = await page.goto(url, wait_until="load")
            assert answer is not None, url
            if "text/html" not in (await answer.all_headers()).get("content-type", ""):
                continue  # a redirect to a page is followed; anything else is no page
            pages += 1
            problems, links = await footer_and_accessibility(page)
            found[page.url] = problems
            footer_links |= links

        # Answer pages that only a form leads to: the sign-up form with its errors, and the
        # newsletter's "look in your mailbox".
        await page.goto(f"{base}/registrations/events/{meeting}/aanmelden")
        await page.get_by_role("button", name="Aanmelden", exact=True).click()
        await page.get_by_role("alert").first.wait_for()
        problems, links = await footer_and_accessibility(page)
        found["sign-up form with errors"], pages = problems, pages + 1
        footer_links |= links
        await page.goto(f"{base}/notifications/nieuwsbrief")
        await page.get_by_label("E-mailadres (verplicht)").fill("voettekst-nieuws@school.nl")
        await page.get_by_role("button", name="Aanmelden").click()
        await page.get_by_role("heading", name="Bijna klaar").wait_for()
        problems, links = await footer_and_accessibility(page)
        found["newsletter answer"], pages = problems, pages + 1
        footer_links |= links

        # The footer's links are the statements, and they work.
        privacy, accessibility = (
            f"{base}/events/privacyverklaring",
            f"{base}/events/toegankelijkheidsverklaring",
        )
        assert footer_links == {privacy, accessibility}
        await page.goto(f"{base}/registrations/events/{meeting}/aanmelden")
        await page.locator("footer").get_by_role("link", name="Privacyverklaring").click()
        await page.wait_for_url(privacy)
        assert await page.get_by_role("heading", level=1).inner_text() == "Privacyverklaring"
        await page.locator("footer").get_by_role("link", name="Toegankelijkheidsverklaring").click()
        await page.wait_for_url(accessibility)
        heading = await page.get_by_role("heading", level=1).inner_text()
        assert heading == "Toegankelijkheidsverklaring"
    finally:
        await context.close()

    assert {url: problems for url, problems in found.items() if problems} == {}
    # Every kind of public page was reached (guards against a crawl that finds nothing).
    paths = {urlsplit(url).path for url in found if url.startswith("http")}
    for expected in (
        "/events/agenda",
        "/events/regio/drenthe",
        f"/events/watch/{webinar}",
        "/events/privacyverklaring",
        "/events/toegankelijkheidsverklaring",
        "/registrations/",
        f"/registrations/events/{meeting}/aanmelden",
        f"/registrations/events/{meeting}/ontvangen",
        f"/registrations/r/{manage}",
        "/notifications/nieuwsbrief",
    ):
        assert expected in paths, expected
    figures(
        f"statements: {pages} public pages of 4 services crawled in Chromium through the "
        "gateway: footer with both statements on every one, 0 accessibility problems (lang, "
        "one h1, main, named form controls, img alt, no positive tabindex; axe-core serious "
        "and critical)"
    )


async def footer_and_accessibility(page: Any) -> tuple[list[str], set[str]]:
    """The page's problems (footer, ``ACCESSIBILITY_CHECK``, axe-core's serious and critical
    violations) and the addresses its footer links to.

    A problem that cannot be fixed goes into the accessibility statement's known problems,
    and only that check is left out here, for that page only, saying why."""
    problems: list[str] = await page.evaluate(ACCESSIBILITY_CHECK)
    problems += [
        f"axe: {violation['id']} ({violation['impact']}) on {len(violation['nodes'])} elements"
        for violation in await serious_accessibility_violations(page)
    ]
    footer = page.locator("footer")
    if await footer.count() != 1:
        return [*problems, f"footer: {await footer.count()} <footer> elements"], set()
    links: list[str] = await footer.locator("a").evaluate_all("links => links.map(a => a.href)")
    names = [" ".join(name.split()) for name in await footer.locator("a").all_inner_texts()]
    if names != ["Privacyverklaring", "Toegankelijkheidsverklaring"]:
        problems.append(f"footer: links {names}")
    return problems, set(links)
