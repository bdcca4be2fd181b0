"""Every organiser page of the four services, read from the apps, opened in a real browser by
a signed-in programme team member: each passes axe-core (no serious or critical violation)
and carries the one console header, whichever service serves it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Platform
from tests.security.test_sessions import organiser_routes, route_values
from tests.support import serious_accessibility_violations


async def test_every_organiser_page_passes_axe_and_has_the_console_header(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    values = await route_values(platform)
    base = platform.stack.config.public_base_url
    context = await browser.new_context()
    checked: list[tuple[str, str]] = []
    try:
        page = await context.new_page()
        await platform.log_in(page)
        for route in organiser_routes():
            if route.access != "organiser page" or route.method != "GET":
                continue
            answer = await page.goto(base + route.url(values))
            assert answer is not None
            where = f"/{route.service}{route.path}"
            if "{token}" not in route.path:  # a made-up check-in token finds nobody: a 404
                assert answer.status == 200, (where, answer.status)
            if not route.path.endswith(("{token}", "/voorbeeld")):  # the e-mail, as sent
                assert await page.locator("header.console").count() == 1, where
            assert await serious_accessibility_violations(page) == [], where
            checked.append((route.service, where))
    finally:
        await context.close()
    figures(f"console accessibility: {len(checked)} organiser pages, axe-clean, one header")
    assert {service for service, _ in checked} == {
        "events",
        "registrations",
        "notifications",
        "analytics",
    }
