"""The event hub, from outside: one page per event whose counts are the same numbers the
event list, the attendee page and the dashboard show, with one click to the attendees, the
figures and a mailing to the event's people; usable on a phone (360 px) in a real browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.support import eventually, serious_accessibility_violations


def number(text: str, label: str) -> int:
    found = re.search(rf"{label}:?\s*</?[^>]*>?\s*(\d+)", text) or re.search(
        rf"{label}\D{{0,80}}?(\d+)", text, re.S
    )
    assert found is not None, f"{label} on the page"
    return int(found.group(1))


def hub_count(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1).strip()


async def test_the_hub_shows_the_counts_every_other_page_shows_and_links_one_click_away(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    event_id = await published_meeting(platform, "Hubmiddag Drenthe", capacity=3)
    people = [Person(f"Hub Deelnemer {n}", f"hub{n}@school.example", "Hubcollege") for n in "abcd"]
    for person in people:
        await api_sign_up(platform, event_id, person)
    attendees = await eventually(
        lambda: _all_registered(platform, event_id, len(people)), what="the four registrations"
    )
    confirmed = [a for a in attendees if a["status"] == "confirmed"]
    checked = await platform.gateway.post(
        f"/registrations/api/organiser/registrations/{confirmed[0]['id']}/check-in",
        headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
    )
    assert checked.status_code == 200, checked.text

    async with platform.organiser_browser() as organiser:
        hub = await organiser.get(f"/events/organiser/evenementen/{event_id}/overzicht")
        assert hub.status_code == 200
        shown = {
            "confirmed": hub_count(hub.text, "count-confirmed"),
            "seats": hub_count(hub.text, "count-seats-left"),
            "waitlisted": hub_count(hub.text, "count-waitlisted"),
            "checked_in": hub_count(hub.text, "count-checked-in"),
        }
        assert shown == {"confirmed": "3", "seats": "0 van 3", "waitlisted": "1", "checked_in": "1"}

        listed = await organiser.get("/events/organiser/", params={"zoek": "Hubmiddag"})
        row = listed.text.split("Hubmiddag Drenthe", 1)[1].split("</tr>", 1)[0]
        cells = re.findall(r"<td>([^<]*)</td>", row)
        assert cells[-4:] == ["3", "0", "1", "1"], cells

        page = await organiser.get(f"/registrations/organisator/evenementen/{event_id}")
        assert page.status_code == 200
        assert number(page.text, "Aangemeld") == 3
        assert number(page.text, "Wachtlijst") == 1
        assert number(page.text, "Ingecheckt") == 1

        async def dashboard_registered() -> int | None:
            answer = await organiser.get(f"/analytics/dashboard/{event_id}")
            value = number(answer.text, "Aangemeld")
            return value if value == 3 else None

        assert await eventually(dashboard_registered, what="the dashboard's count") == 3

        # One click from the hub: attendees, figures, a mailing to the no-shows.
        links = {
            text: href for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', hub.text)
        }
        for text in ("Deelnemers en inchecken", "Cijfers", "Mailing aan wie niet kwam"):
            opened = await organiser.get(links[text])
            assert opened.status_code == 200, (text, links[text], opened.status_code)

    phone = await browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = await phone.new_page()
        await platform.log_in(page)
        base = platform.stack.config.public_base_url
        for path in (f"/events/organiser/evenementen/{event_id}/overzicht", "/events/organiser/"):
            await page.goto(base + path)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            assert await serious_accessibility_violations(page) == [], path
    finally:
        await phone.close()
    figures("event hub: 4 counts equal on hub, list, attendee page and dashboard")


async def _all_registered(platform: Platform, event_id: str, expected: int) -> Any:
    answer = await platform.gateway.get(
        f"/registrations/api/organiser/events/{event_id}/attendees",
        headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
    )
    rows = answer.json()["attendees"] if answer.status_code == 200 else []
    return rows if len(rows) == expected else None
