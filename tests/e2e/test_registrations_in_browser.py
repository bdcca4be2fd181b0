"""People sign up in a real browser (Debian's Chromium) through the gateway: a teacher with a
colleague, who then cancels; an attendee whose QR code an organiser scans with a phone to
check them in. axe-core finds no serious or critical problem on the pages people see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import segno

from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.registrations import RegistrationCheckedIn
from stolive_shared.contracts.topics import REGISTRATIONS
from tests.e2e.conftest import Platform, known_to_registrations
from tests.e2e.test_walking_skeleton import published_event
from tests.integration.test_registrations_http import qr_modules
from tests.support import eventually, read_topic, serious_accessibility_violations

# The regions the e2e tests plan meetings in (a regional leader's own and someone else's).
TEST_REGIONS = [
    {"code": "drenthe", "name": "Drenthe", "province": "Drenthe"},
    {"code": "twente", "name": "Twente", "province": "Overijssel"},
    {"code": "groningen", "name": "Groningen", "province": "Groningen"},
]


async def published_meeting(
    platform: Platform,
    title: str,
    capacity: int = 60,
    *,
    waitlist: bool = True,
    region: str = "drenthe",
) -> str:
    """A published regional meeting of ``region``, once the registrations service knows it."""
    await platform.organiser.put("/api/regions", json=TEST_REGIONS)
    starts = datetime.now(UTC) + timedelta(days=12)
    created = await platform.organiser.post(
        "/api/events",
        json={
            "kind": "regional_meeting",
            "title": title,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "venue": "Drenthe College, Emmen",
            "region_codes": [region],
            "capacity": capacity,
            "waitlist_enabled": waitlist,
        },
    )
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    published = await platform.organiser.post(f"/api/events/{event_id}/publish")
    assert published.status_code == 200, published.text
    await eventually(
        lambda: known_to_registrations(platform, event_id),
        what="the registrations service to learn the meeting",
    )
    return event_id


async def fill_in_person(page: Any, name: str, email: str) -> None:
    await page.get_by_label("Naam", exact=True).fill(name)
    await page.get_by_label("E-mailadres", exact=True).fill(email)
    await page.get_by_label("School of organisatie").fill("Esdal College")
    await page.get_by_label("Rol", exact=True).select_option("docent")
    await page.get_by_label("Ik ga akkoord met de privacyverklaring van STO").check()


async def test_a_teacher_signs_up_with_a_colleague_and_cancels_in_a_browser(
    platform: Platform, browser: Any
) -> None:
    event_id = await published_event(platform, capacity=40, title="STO LIVE met collega's")
    base = platform.stack.config.public_base_url
    page = await browser.new_page()
    try:
        await page.goto(f"{base}/registrations/events/{event_id}/aanmelden")
        assert await serious_accessibility_violations(page) == []
        await fill_in_person(page, "Fenna Hoek", "fenna@esdal.nl")
        await page.get_by_role("button", name="Collega's toevoegen").click()
        await page.get_by_label("Naam van collega 1").wait_for()
        assert await serious_accessibility_violations(page) == []
        await page.get_by_label("Naam van collega 1").fill("Gert Last")
        await page.get_by_label("E-mail van collega 1").fill("gert@esdal.nl")
        await page.get_by_role("button", name="Aanmelden", exact=True).click()

        await page.wait_for_url(f"**/registrations/events/{event_id}/ontvangen")
        assert "Kijk in je mail" in await page.content()
        assert await serious_accessibility_violations(page) == []

        # Fenna's own link, from her e-mail, shows the colleague she signed up.
        await page.goto(await platform.manage_link("fenna@esdal.nl"))
        assert "Gert Last: Aangemeld" in await page.content()
        join = await page.get_by_role("link", name="Open je persoonlijke kijklink").get_attribute(
            "href"
        )
        assert join is not None
        assert join.startswith(f"{base}/events/watch/{event_id}?v=v_")
        assert await serious_accessibility_violations(page) == []

        await page.get_by_role("button", name="Aanmelding annuleren").click()
        await page.wait_for_url("**geannuleerd=1")
        assert "Geannuleerd" in await page.content()
        assert await serious_accessibility_violations(page) == []
    finally:
        await page.close()
    await eventually(
        lambda: platform.smtp.to("gert@esdal.nl"), what="the colleague's own confirmation"
    )
    await eventually(
        lambda: len(platform.smtp.to("fenna@esdal.nl")) == 2, what="confirmed + cancelled"
    )


async def test_an_organiser_checks_in_by_scanning_the_qr_code_on_a_phone(
    platform: Platform, browser: Any
) -> None:
    event_id = await published_meeting(platform, "Regiobijeenkomst Drenthe")
    base = platform.stack.config.public_base_url
    attendee = await browser.new_page()
    try:
        await attendee.goto(f"{base}/registrations/events/{event_id}/aanmelden")
        await fill_in_person(attendee, "Hidde Kuipers", "hidde@esdal.nl")
        await attendee.get_by_role("button", name="Aanmelden", exact=True).click()
        await attendee.wait_for_url("**/ontvangen")
        await attendee.goto(await platform.manage_link("hidde@esdal.nl"))
        qr = attendee.get_by_role("img", name="QR-code om in te checken bij de ingang")
        assert await qr.is_visible()
        source = await qr.get_attribute("src")
        assert await serious_accessibility_violations(attendee) == []
    finally:
        await attendee.close()
    assert source is not None
    svg = (await platform.gateway.get(source)).text

    listed = await platform.gateway.get(
        f"/registrations/api/organiser/events/{event_id}/attendees",
        headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
    )
    [person] = listed.json()["attendees"]
    check_in_url = person["check_in_url"]
    scanned = segno.make(check_in_url, error="m")
    assert qr_modules(svg) == {
        (x, y) for y, row in enumerate(scanned.matrix) for x, dark in enumerate(row) if dark
    }

    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = await phone.new_page()
        # Not logged in on this phone yet: the login page first, then straight back.
        await page.goto(check_in_url)
        await page.get_by_label("Organisatorsleutel").fill(platform.stack.organiser_token)
        await page.get_by_role("button", name="Inloggen").click()
        await page.wait_for_url(check_in_url)
        assert "Hidde Kuipers" in await page.content()
        await page.get_by_role("button", name="Inchecken").click()
        await page.get_by_role("status").wait_for()
        assert await page.get_by_role("status").inner_text() == "Hidde Kuipers is ingecheckt."
    finally:
        await phone.close()

    counts = await platform.gateway.get(f"/registrations/api/events/{event_id}/counts")
    assert counts.json()["checked_in"] == 1

    async def published_check_in() -> bool:
        records = await read_topic(platform.kafka, REGISTRATIONS.name, REGISTRATIONS.partitions)
        for record in records:
            if not record.value or b'"registration.checked_in"' not in record.value:
                continue
            message = decode(record.value)
            assert isinstance(message, RegistrationCheckedIn)
            if message.registration.registration_id == uuid.UUID(person["id"]):
                return bool(record.key == event_id.encode())
        return False

    await eventually(published_check_in, timeout_s=20, what="registration.checked_in on Kafka")
