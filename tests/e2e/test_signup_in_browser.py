"""A person signs up in a real browser (Debian's Chromium), finds their link in their e-mail,
and cancels; the pages are accessible."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually, serious_accessibility_violations


async def test_signing_up_and_cancelling_in_a_browser(platform: Platform, browser: Any) -> None:
    event_id = await published_event(platform, capacity=40, title="STO LIVE in de browser")
    base = platform.stack.config.public_base_url
    page = await browser.new_page()
    try:
        await page.goto(f"{base}/registrations/events/{event_id}/aanmelden")
        assert await serious_accessibility_violations(page) == []
        await page.get_by_label("Naam").fill("Eva Bakker")
        await page.get_by_label("E-mailadres").fill("eva@school.nl")
        await page.get_by_label("School of organisatie").fill("Het Rijks")
        await page.get_by_label("Rol").select_option("schoolleider")
        await page.get_by_label("Ik ga akkoord met de privacyverklaring van STO").check()
        await page.get_by_role("button", name="Aanmelden").click()
        await page.wait_for_url(f"**/registrations/events/{event_id}/ontvangen")
        assert await page.get_by_role("status").inner_text() == (
            "We hebben je aanmelding voor STO LIVE in de browser ontvangen."
        )
        assert await serious_accessibility_violations(page) == []

        # The personal link comes by e-mail, to the address given, and only there.
        await page.goto(await platform.manage_link("eva@school.nl"))
        assert "Aangemeld" in await page.content()
        assert await serious_accessibility_violations(page) == []

        await page.get_by_role("button", name="Aanmelding annuleren").click()
        await page.wait_for_url("**geannuleerd=1")
        assert "Geannuleerd" in await page.content()
    finally:
        await page.close()
    await eventually(
        lambda: len(platform.smtp.to("eva@school.nl")) == 2, what="confirmed + cancelled"
    )
