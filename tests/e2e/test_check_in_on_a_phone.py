"""Check-in on a phone, from outside: check-in staff, given one meeting, sign in with their
token on a 360 px wide browser, find the meeting at the top of their list, check people in
with one tap each, and see nothing they are not given (no addresses, no CSV, no other event).
The page does not scroll sideways and passes axe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually, serious_accessibility_violations

PEOPLE = [
    Person("Sanne Telefoon", "sanne.telefoon@school.example", "Techniekcollege Emmen"),
    Person("Joost Telefoon", "joost.telefoon@school.example", "Techniekcollege Assen"),
]


async def test_check_in_staff_check_people_in_on_a_phone(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    event_id = await published_meeting(platform, "Techniekavond aan de deur", capacity=20)
    other_id = await published_meeting(platform, "Een andere avond", capacity=20)
    for person in PEOPLE:
        await api_sign_up(platform, event_id, person)

    async def registered() -> int | None:
        counts = await platform.gateway.get(f"/registrations/api/events/{event_id}/counts")
        confirmed: int = counts.json()["confirmed"]
        return confirmed if confirmed == len(PEOPLE) else None

    await eventually(registered, what="both sign-ups")
    token = await platform.account_token("portier", "checkin", events=(event_id,))
    base = platform.stack.config.public_base_url
    phone = await browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = await phone.new_page()
        await page.goto(f"{base}/events/organiser/inloggen")
        await page.get_by_label("Organisatorsleutel").fill(token)
        await page.get_by_role("button", name="Inloggen", exact=True).click()
        await page.wait_for_url(f"{base}/registrations/organisator/")
        listed = await page.locator("main").inner_text()
        assert "Techniekavond aan de deur" in listed
        assert "Een andere avond" not in listed
        await page.get_by_role("link", name="Techniekavond aan de deur").click()
        await page.get_by_role("heading", name="Inchecken: Techniekavond aan de deur").wait_for()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert await serious_accessibility_violations(page) == []
        text = await page.locator("main").inner_text()
        assert "sanne.telefoon@school.example" not in text
        assert await page.get_by_role("link", name="Download als CSV (Excel)").count() == 0

        await page.get_by_role("button", name="Sanne Telefoon inchecken").click()
        await page.locator("tr", has_text="Sanne Telefoon").get_by_text("Ingecheckt").wait_for()
        assert await page.get_by_role("button", name="Joost Telefoon inchecken").count() == 1
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360

        other = await page.goto(f"{base}/registrations/organisator/evenementen/{other_id}")
        assert other is not None
        assert other.status == 403
    finally:
        await phone.close()
    counts = await platform.gateway.get(f"/registrations/api/events/{event_id}/counts")
    assert counts.json()["checked_in"] == 1
    figures("check-in on a phone: 360 px, no sideways scrolling, axe-clean, one tap a person")
