"""A person who writes in (AVG articles 15 and 17) is helped by an organiser, on the organiser's
privacy page, in a browser logged in through the gateway: the export is one file with every
service's part, an erasure needs a tick and says what it did, an address nobody holds is
answered as such. A second browser, without a session, gets the login page, not the form.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Platform
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.privacy.conftest import TIMEOUT_MS, Person, api_sign_up

PLATFORM_ENV = {"SIGNUP_RATE_PER_MINUTE": "0"}

LIES = Person("Lies Verzoekstra", "lies.verzoekstra@brieven-college.nl", "Brievencollege Zwolle")
MAX = Person("Max Blijftstaan", "max.blijftstaan@brieven-college.nl", "Brievencollege Zwolle")


async def test_an_organiser_exports_and_erases_a_person_who_writes_in(
    platform: Platform, browser: Any
) -> None:
    base = platform.stack.config.public_base_url
    meeting = await published_meeting(platform, "Verzoekenbijeenkomst Zwolle")
    for person in (LIES, MAX):
        await api_sign_up(platform, meeting, person)
    manage = await platform.manage_link(LIES.email)
    await platform.manage_link(MAX.email)

    organiser = await browser.new_context(accept_downloads=True)
    organiser.set_default_timeout(TIMEOUT_MS)
    stranger = await browser.new_context()
    stranger.set_default_timeout(TIMEOUT_MS)
    try:
        page = await organiser.new_page()
        await platform.log_in(page)
        await page.goto(f"{base}/registrations/organisator/privacy")
        address = page.get_by_label("E-mailadres van de persoon")

        await address.fill(LIES.email.upper())
        async with page.expect_download() as download:
            await page.get_by_role("button", name="Alles downloaden wat we bewaren").click()
        saved = await (await download.value).path()
        exported = json.loads(saved.read_text(encoding="utf-8"))
        assert [r["name"] for r in exported["registrations"]] == [LIES.name]
        assert {"notifications", "analytics"} <= set(exported)
        assert MAX.email not in json.dumps(exported)

        await address.fill(LIES.email)
        await page.get_by_role("button", name="Persoon verwijderen").click()
        refused = await page.get_by_role("alert").inner_text()
        assert "Vink aan dat je deze persoon echt wilt verwijderen" in refused

        await page.get_by_label("Ik wil deze persoon echt verwijderen").check()
        await page.get_by_role("button", name="Persoon verwijderen").click()
        done = await page.get_by_role("status").inner_text()
        assert "Verwijderd: 1 aanmelding(en) geanonimiseerd" in done

        await page.get_by_label("E-mailadres van de persoon").fill("niemand@brieven-college.nl")
        await page.get_by_label("Ik wil deze persoon echt verwijderen").check()
        await page.get_by_role("button", name="Persoon verwijderen").click()
        nobody = await page.get_by_role("status").inner_text()
        assert "Dit adres heeft geen aanmeldingen (meer)" in nobody

        other = await stranger.new_page()
        await other.goto(f"{base}/registrations/organisator/privacy")
        assert "/events/organiser/inloggen" in other.url
        assert await other.get_by_label("E-mailadres van de persoon").count() == 0
    finally:
        await organiser.close()
        await stranger.close()

    gone = await platform.gateway.get(manage.removeprefix(base))
    assert gone.status_code == 404
    assert LIES.name not in gone.text
    listed = await platform.organiser_json(
        f"/registrations/api/organiser/events/{meeting}/attendees"
    )
    assert sorted(row["name"] for row in listed["attendees"]) == ["", MAX.name]
    assert listed["counts"]["confirmed"] == 2
