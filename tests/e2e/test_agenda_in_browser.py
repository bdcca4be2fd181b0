"""The public side, seen from outside: the one address opens on the agenda, which says before
the form whether places are left, and a form refused because the last seat went while a
person was typing keeps what they typed. Two people, two browsers, through the gateway.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually, serious_accessibility_violations

TIMEOUT_MS = 60_000
PLATFORM_ENV = {"SIGNUP_RATE_PER_MINUTE": "0"}

ANS = Person("Ans Eerste", "ans.eerste@agenda-school.nl", "Agendacollege Assen")
BERT = Person("Bert Eerste", "bert.eerste@agenda-school.nl", "Agendacollege Emmen")
DIRK = Person("Dirk Sneller", "dirk.sneller@agenda-school.nl", "Snelschool Assen")


async def agenda_entry(page: Any, title: str) -> str:
    """The text of the agenda item with this title."""
    item = page.locator("ul.agenda > li").filter(has=page.get_by_role("heading", name=title))
    return " ".join((await item.inner_text()).split())


async def test_the_agenda_tells_places_before_the_form_and_a_refused_form_keeps_its_input(
    platform: Platform, browser: Any
) -> None:
    small = await published_meeting(platform, "Kleine werkplaats Assen", 2, waitlist=False)
    busy = await published_meeting(platform, "Drukke middag Emmen", 1, waitlist=True)
    await published_meeting(platform, "Ruime zaal Meppel", 60, waitlist=True)
    await api_sign_up(platform, small, ANS)
    await api_sign_up(platform, busy, BERT)
    base = platform.stack.config.public_base_url

    teacher = await browser.new_context()
    other = await browser.new_context()
    teacher.set_default_timeout(TIMEOUT_MS)
    other.set_default_timeout(TIMEOUT_MS)
    try:
        page = await teacher.new_page()
        await page.goto(f"{base}/")  # the one address opens on the agenda
        await page.get_by_role("heading", name="Agenda van Sterk Techniekonderwijs").wait_for()

        async def seats_shown() -> bool:
            await page.reload()
            return "Nog 1 plek" in await agenda_entry(page, "Kleine werkplaats Assen")

        await eventually(seats_shown, what="the agenda to count the first sign-up")
        assert "Vol — wachtlijst" in await agenda_entry(page, "Drukke middag Emmen")
        roomy_text = await agenda_entry(page, "Ruime zaal Meppel")
        assert "Nog" not in roomy_text
        assert "Vol" not in roomy_text
        assert await serious_accessibility_violations(page) == []

        # The teacher starts on the last seat of the small meeting ...
        await page.get_by_role("link", name="Aanmelden voor Kleine werkplaats Assen").click()
        await page.wait_for_url(f"**/events/{small}/aanmelden")
        assert "Nog 1 plek" in await page.locator("main").inner_text()
        await page.get_by_label("Naam", exact=True).fill("Carla Typtlang")
        await page.get_by_label("E-mailadres", exact=True).fill("carla.typtlang@agenda-school.nl")
        await page.get_by_label("School of organisatie").fill("Typcollege Assen")
        await page.get_by_label("Rol", exact=True).select_option("docent")
        await page.get_by_label("Ik ga akkoord met de privacyverklaring van STO").check()

        # ... while someone else takes it.
        await api_sign_up(platform, small, DIRK)

        async def full_for_others() -> bool:
            look = await other.new_page()
            try:
                await look.goto(f"{base}/registrations/events/{small}/aanmelden")
                text = await look.locator("main").inner_text()
                return "Vol: er is geen wachtlijst" in text and (
                    await look.get_by_label("Naam", exact=True).count() == 0
                )
            finally:
                await look.close()

        await eventually(full_for_others, what="a second browser to find the meeting full")

        async with page.expect_response(lambda r: r.request.method == "POST") as sent:
            await page.get_by_role("button", name="Aanmelden", exact=True).click()
        assert (await sent.value).status == 409
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert "vol" in (await alert.inner_text()).lower()
        assert await page.get_by_label("Naam", exact=True).input_value() == "Carla Typtlang"
        assert await page.get_by_label("E-mailadres", exact=True).input_value() == (
            "carla.typtlang@agenda-school.nl"
        )
        assert await page.get_by_label("School of organisatie").input_value() == (
            "Typcollege Assen"
        )

        await page.goto(f"{base}/registrations/")
        small_text = await agenda_entry(page, "Kleine werkplaats Assen")
        assert "Vol" in small_text
        small_link = page.get_by_role("link", name="Aanmelden voor Kleine werkplaats Assen")
        assert await small_link.count() == 0
        busy_link = page.get_by_role("link", name="Aanmelden voor Drukke middag Emmen")
        assert await busy_link.inner_text() == "Aanmelden voor de wachtlijst"
    finally:
        await teacher.close()
        await other.close()
    counts = await platform.gateway.get(f"/registrations/api/events/{small}/counts")
    assert counts.json()["confirmed"] == 2
