"""School sites as data, from the events service's list to the sign-up form, the organiser's
attendee list, the registration messages and the figures per school, through the gateway in
a real browser (Debian's Chromium), with JavaScript and without."""

from __future__ import annotations

import json
from typing import Any

from stolive_shared.contracts.topics import REGISTRATIONS
from tests.e2e.conftest import Platform
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually, form_token, read_topic, serious_accessibility_violations

# The registrations and analytics processes fetch the school list again after a second (five
# minutes in a deployment): the sites imported by the test reach the form quickly.
PLATFORM_ENV = {"SCHOOL_LIST_REFRESH_S": "1"}

HONDSRUG = ("99ZG00", "Vakcollege Hondsrug (Emmen)")
KLAZIENAVEEN = ("99ZG01", "Esdal College, locatie Klazienaveen (Klazienaveen)")
# Two sites the people choose, and enough others that the form offers its filter.
SITES_CSV = (
    "brin;vestiging;naam;plaats;regio\n"
    "99ZG;00;Vakcollege Hondsrug;Emmen;drenthe\n"
    "99ZG;01;Esdal College, locatie Klazienaveen;Klazienaveen;drenthe\n"
    + "".join(f"99ZH;{n:02d};Techniekschool {n};Assen;drenthe\n" for n in range(8))
)


async def meeting_with_two_sites(platform: Platform, title: str) -> str:
    """Two school sites in Drenthe, imported as the programme team does, and a published
    Drenthe meeting whose form lists them."""
    await platform.organiser.put(
        "/api/regions", json=[{"code": "drenthe", "name": "Drenthe", "province": "Drenthe"}]
    )
    imported = await platform.organiser.post(
        "/api/schools/import", content=SITES_CSV, headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"imported": 10}
    return await published_meeting(platform, title)


async def open_form_with_sites(page: Any, url: str) -> None:
    """The form, once this registrations process has the imported sites in its copy."""

    async def listed() -> bool:
        await page.goto(url)
        return bool(await page.locator(f"#school_code option[value='{KLAZIENAVEEN[0]}']").count())

    await eventually(listed, what="the imported sites on the form", timeout_s=30, interval_s=0.5)


async def fill_in(page: Any, name: str, email: str) -> None:
    await page.get_by_label("Naam", exact=True).fill(name)
    await page.get_by_label("E-mailadres", exact=True).fill(email)
    await page.get_by_label("Rol", exact=True).select_option("docent")
    await page.get_by_label("Ik ga akkoord met de privacyverklaring van STO").check()


async def send(page: Any, event_id: str) -> None:
    await page.get_by_role("button", name="Aanmelden", exact=True).click()
    await page.wait_for_url(f"**/registrations/events/{event_id}/ontvangen")


async def test_a_teacher_picks_their_school_and_the_figures_count_it_per_school(
    platform: Platform, browser: Any
) -> None:
    event_id = await meeting_with_two_sites(platform, "Regiobijeenkomst Drenthe: scholen")
    base = platform.stack.config.public_base_url
    form_url = f"{base}/registrations/events/{event_id}/aanmelden"
    page = await browser.new_page()
    try:
        await open_form_with_sites(page, form_url)
        typed = page.get_by_label("Andere school of organisatie", exact=True)
        assert await typed.is_hidden()  # until "another school" is chosen
        assert await serious_accessibility_violations(page) == []

        # Wilma finds her school by typing part of its place, then picks it.
        await fill_in(page, "Wilma Zwiers", "wilma@klazienaveen.nl")
        await page.get_by_label("Zoek je school in de lijst (naam of plaats)").fill("klazien")
        assert await page.get_by_role("status").inner_text() == "1 school gevonden"
        assert await serious_accessibility_violations(page) == []
        await page.get_by_label("School", exact=True).select_option(KLAZIENAVEEN[0])
        await send(page, event_id)

        # Otto's school is not in the list: he chooses "another school" and types it.
        await page.goto(form_url)
        await fill_in(page, "Otto Brink", "otto@kolk.nl")
        await page.get_by_label("School", exact=True).select_option("anders")
        assert await typed.is_visible()
        await typed.fill("Typschool De Kolk")
        await send(page, event_id)
    finally:
        await page.close()

    # The organiser's attendee list names the chosen site by its label, the other as typed.
    organiser = await browser.new_context()
    try:
        listing = await organiser.new_page()
        await platform.log_in(listing)
        await listing.goto(f"{base}/registrations/organisator/evenementen/{event_id}")
        rows = {
            (await row.locator("td").nth(0).inner_text()).split("\n")[0]: await row.locator("td")
            .nth(1)
            .inner_text()
            for row in await listing.locator("tbody tr").all()
        }
        assert rows == {"Wilma Zwiers": KLAZIENAVEEN[1], "Otto Brink": "Typschool De Kolk"}
    finally:
        await organiser.close()
    attendees = await platform.organiser_json(
        f"/registrations/api/organiser/events/{event_id}/attendees"
    )
    schools = {a["name"]: (a["school_code"], a["school"]) for a in attendees["attendees"]}
    assert schools == {
        "Wilma Zwiers": KLAZIENAVEEN,
        "Otto Brink": (None, "Typschool De Kolk"),
    }

    # On the topic: the site's code in clear, the person (and a typed school) only sealed.
    async def messages() -> list[Any] | None:
        records = await read_topic(platform.kafka, REGISTRATIONS.name, REGISTRATIONS.partitions)
        ours = [r for r in records if event_id.encode() in r.value]
        return ours if len(ours) >= 2 else None

    records = await eventually(messages, what="both registrations on the topic")
    confirmed = [json.loads(r.value) for r in records]
    assert {
        (m["type"], m["version"], m["registration"]["attendee"]["school_code"]) for m in confirmed
    } == {("registration.confirmed", 4, KLAZIENAVEEN[0]), ("registration.confirmed", 4, None)}
    for record in records:
        for clear in (b"Wilma", b"Zwiers", b"wilma@", b"Otto", b"otto@", b"Kolk", b"Klazienaveen"):
            assert clear not in record.value, clear

    # Analytics counts the confirmed registration per school, named from the list.
    async def per_school() -> list[dict[str, Any]] | None:
        body = await platform.organiser_json(f"/analytics/api/events/{event_id}/figures")
        found: list[dict[str, Any]] = body["by_school"]
        labelled = any(s["label"] == KLAZIENAVEEN[1] for s in found)
        return found if labelled and len(found) == 2 else None

    by_school = await eventually(per_school, what="the figures per school", timeout_s=45)
    assert by_school == [
        {
            "school_code": KLAZIENAVEEN[0],
            "label": KLAZIENAVEEN[1],
            "confirmed": 1,
            "attended": 0,
        },
        {
            "school_code": None,
            "label": "Andere school of organisatie",
            "confirmed": 1,
            "attended": 0,
        },
    ]

    # The JSON API takes a site too, and refuses one that is not in the list, in Dutch.
    body = {
        "name": "Pien Post",
        "email": "pien@hondsrug.nl",
        "role": "docent",
        "privacy_consent": True,
        "form_token": await form_token(platform.gateway, "/registrations", event_id),
    }
    url = f"/registrations/api/events/{event_id}/registrations"
    unknown = await platform.gateway.post(url, json={**body, "school_code": "99ZZ99"})
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["detail"][0]["loc"] == ["body", "school_code"]
    assert unknown.json()["detail"][0]["msg"].startswith("Kies je school uit de lijst")
    known = await platform.gateway.post(url, json={**body, "school_code": HONDSRUG[0]})
    assert known.status_code == 202, known.text


async def test_the_form_without_javascript_signs_up_with_a_school(
    platform: Platform, browser: Any
) -> None:
    event_id = await meeting_with_two_sites(platform, "Regiobijeenkomst Drenthe: zonder script")
    base = platform.stack.config.public_base_url
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        await open_form_with_sites(page, f"{base}/registrations/events/{event_id}/aanmelden")
        # Without the script the list and the text field are both there, and nothing filters.
        assert await page.get_by_label("Andere school of organisatie", exact=True).is_visible()
        assert await page.locator("#school_filter").count() == 0
        await fill_in(page, "Sanne Mulder", "sanne@hondsrug.nl")
        await page.get_by_label("School", exact=True).select_option(HONDSRUG[0])
        await send(page, event_id)
    finally:
        await context.close()

    async def listed() -> dict[str, Any] | None:
        body = await platform.organiser_json(
            f"/registrations/api/organiser/events/{event_id}/attendees"
        )
        attendees: list[dict[str, Any]] = body["attendees"]
        return attendees[0] if attendees else None

    sanne = await eventually(listed, what="Sanne's registration")
    assert (sanne["school_code"], sanne["school"], sanne["region_code"]) == (
        *HONDSRUG,
        "drenthe",  # none chosen on the form: the site's region
    )
