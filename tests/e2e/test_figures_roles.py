"""The figures by role, from outside: through the gateway, with accounts as the programme team
gives them. A regional programme leader sees the dashboard and figures of their own region's
events and nothing of another region's (page and API, each refusal audited), and their index
lists only their own; a series (every region) is for the whole-programme roles; check-in staff
see no figures at all. The dashboard of an event is usable on a phone (360 px) in a browser.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from stolive_shared.templating import local_time
from stolive_shared.urls import ConsoleUrls
from tests.e2e.conftest import Person, Platform, api_sign_up
from tests.e2e.test_analytics_live_figures import beacons
from tests.support import eventually, serious_accessibility_violations

REGIONS = [
    {"code": "drenthe", "name": "Drenthe", "province": "Drenthe"},
    {"code": "groningen", "name": "Groningen", "province": "Groningen"},
]


async def regional_event(
    platform: Platform, title: str, region: str, *, webinar: bool = False
) -> str:
    """A published meeting (or webinar) of ``region``, once analytics knows it."""
    assert (await platform.organiser.put("/api/regions", json=REGIONS)).status_code == 200
    starts = datetime.now(UTC) + timedelta(days=9)
    where: dict[str, Any] = (
        {"kind": "webinar", "stream_url": "https://live.sterktechniekonderwijs.nl/demo"}
        if webinar
        else {"kind": "regional_meeting", "venue": "Techniekhuis, Assen", "capacity": 40}
    )
    created = await platform.organiser.post(
        "/api/events",
        json={
            **where,
            "title": title,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "region_codes": [region],
        },
    )
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    assert (await platform.organiser.post(f"/api/events/{event_id}/publish")).status_code == 200
    await eventually(lambda: _titled(platform, event_id), what=f"analytics to know {title!r}")
    return event_id


async def _titled(platform: Platform, event_id: str) -> bool:
    figures = await platform.organiser_json(f"/analytics/api/events/{event_id}/figures")
    return figures["title"] is not None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def denied_paths(platform: Platform, account: str) -> set[str]:
    """The paths the audit log holds as refused to ``account``'s organiser."""
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        rows = await conn.fetch(
            """SELECT detail::text AS detail FROM organisers.audit
               WHERE actor = $1 AND outcome = 'denied' AND service = 'analytics'""",
            f"{account}@sto.example",
        )
    finally:
        await conn.close()
    paths = set()
    for row in rows:
        paths.add(json.loads(row["detail"])["path"])  # jsonb, read as text without a codec
    return paths


async def test_a_regional_leader_sees_their_own_regions_figures_and_check_in_staff_none(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    ours = await regional_event(platform, "Cijfermiddag Drenthe", "drenthe")
    theirs = await regional_event(platform, "Cijfermiddag Groningen", "groningen")
    console = ConsoleUrls(platform.stack.config.public_base_url)
    leader = f"regio-drenthe-{uuid.uuid4().hex[:6]}"
    token = await platform.account_token(leader, "regional", regions=("drenthe",))

    async with platform.browser_as(token) as browser:
        own = await browser.get(f"/analytics/dashboard/{ours}")
        assert own.status_code == 200, own.text
        assert "Cijfermiddag Drenthe" in own.text
        assert f"{leader} · regionaal programmaleider" in own.text  # the console header
        # One click to the event's hub, its attendees and a mailing to each of its groups.
        hrefs = set(re.findall(r'<a href="([^"]+)"', own.text))
        wanted = {
            console.hub(ours),
            console.attendees(ours),
            *(console.new_mailing(ours, group) for group in ("registered", "attended", "no_shows")),
        }
        assert wanted <= {href.replace("&amp;", "&") for href in hrefs}, wanted - hrefs
        for href in (console.hub(ours), console.attendees(ours)):
            assert (await browser.get(href)).status_code == 200, href
        assert 'id="h-series"' not in own.text  # a series spans every region: not theirs

        other = await browser.get(f"/analytics/dashboard/{theirs}")
        assert other.status_code == 403
        assert "Dit evenement valt buiten" in other.text
        assert "Cijfermiddag Groningen" not in other.text

        index = await browser.get("/analytics/dashboard")
        assert index.status_code == 200
        assert f"/dashboard/{ours}" in index.text
        assert f"/dashboard/{theirs}" not in index.text
        assert "Cijfermiddag Groningen" not in index.text

    api = platform.gateway
    assert (
        await api.get(f"/analytics/api/events/{ours}/figures", headers=bearer(token))
    ).status_code == 200
    for path in ("figures", "live", "live/feed", "attendance.csv"):
        answer = await api.get(f"/analytics/api/events/{theirs}/{path}", headers=bearer(token))
        assert answer.status_code == 403, (path, answer.status_code)
    assert (await api.get("/analytics/api/series", headers=bearer(token))).status_code == 403
    refused = await eventually(
        lambda: _with(denied_paths(platform, leader), f"/api/events/{theirs}/figures"),
        what="the refusals in the audit log",
    )
    assert any(path.endswith(f"/dashboard/{theirs}") for path in refused), refused

    # Support reads every event's figures and the series, changes nothing.
    support = await platform.account_token(f"support-{uuid.uuid4().hex[:6]}", "support")
    for path in (f"/analytics/api/events/{theirs}/figures", "/analytics/api/series"):
        assert (await api.get(path, headers=bearer(support))).status_code == 200, path
    # The attendance list names people: not for a read-only role without the attendee list.
    csv = await api.get(f"/analytics/api/events/{theirs}/attendance.csv", headers=bearer(support))
    assert csv.status_code == 403

    # Check-in staff check people in, and see no figures, not even of their own event.
    staff = await platform.account_token(
        f"incheck-{uuid.uuid4().hex[:6]}", "checkin", events=(ours,)
    )
    async with platform.browser_as(staff) as browser:
        for path in (f"/analytics/dashboard/{ours}", "/analytics/dashboard"):
            page = await browser.get(path)
            assert page.status_code == 403, path
            assert "Je rol geeft geen toegang" in page.text
    for path in ("figures", "live"):
        answer = await api.get(f"/analytics/api/events/{ours}/{path}", headers=bearer(staff))
        assert answer.status_code == 403, path
    figures(
        "figures by role: regional leader 200 on own region's dashboard, 403 on another's "
        "(page, 4 API routes, series), index lists own only; support 200; check-in staff 403"
    )


async def _with(found: Any, path: str) -> Any:
    paths = await found
    return paths if any(p.endswith(path) for p in paths) else None


async def test_an_events_dashboard_fits_a_phone_and_passes_axe(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    event_id = await regional_event(
        platform, "STO LIVE: techniek in de regio, een uitzending vol cijfers", "drenthe",
        webinar=True,
    )  # fmt: skip
    for n in range(3):
        person = Person(f"Telefoon Deelnemer {n}", f"telefoon{n}@school.example", "Esdalcollege")
        await api_sign_up(platform, event_id, person)
    await eventually(
        lambda: _registered(platform, event_id, 3), what="the three sign-ups in the figures"
    )
    assert (await platform.organiser.post(f"/api/events/{event_id}/go-live")).status_code == 200
    # Anonymous viewers once the beacon endpoint knows the event is live: a row per region.
    await eventually(
        lambda: _beacons_taken(platform, event_id), what="the beacon endpoint to take live beacons"
    )
    await beacons(platform, event_id, ("telefoon_a", "join"), ("telefoon_b", "join"))

    phone = await browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = await phone.new_page()
        await platform.log_in(page)
        base = platform.stack.config.public_base_url
        await page.goto(f"{base}/analytics/dashboard/{event_id}")
        await page.locator("#live-count").filter(has_text=re.compile(r"^[1-9]")).wait_for()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, width
        assert await serious_accessibility_violations(page) == []
        # Amsterdam time, a decimal comma, and no no-shows before the end.
        figures_json = await platform.organiser_json(f"/analytics/api/events/{event_id}/figures")
        assert figures_json["live"]["viewers"] >= 1
        starts = await _starts_at(platform, event_id)
        assert local_time(starts) in await page.inner_text("main")
        assert re.fullmatch(r"\d+,\d", await page.inner_text("#average"))
        assert "Niet verschenen: bekend na afloop" in await page.inner_text("#funnel")
        # The wide tables scroll inside their own box, which a keyboard can reach.
        region = page.get_by_role("region", name="Kijkers en aanwezigheid per regio")
        assert await region.get_attribute("tabindex") == "0"
        await page.goto(f"{base}/analytics/dashboard")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert await serious_accessibility_violations(page) == []
    finally:
        await phone.close()
    figures(f"dashboard on a phone: 360 px wide, no sideways scrolling ({width} px), 0 axe issues")


async def _registered(platform: Platform, event_id: str, expected: int) -> bool:
    body = await platform.organiser_json(f"/analytics/api/events/{event_id}/figures")
    registered: int = body["funnel"]["registered"]
    return registered == expected


async def _beacons_taken(platform: Platform, event_id: str) -> bool:
    answer = await platform.gateway.post(
        "/events/api/beacons",
        json={
            "event_id": event_id,
            "viewer_id": "telefoon_probe",
            "action": "join",
            "mode": "live",
            "client_ts": datetime.now(UTC).isoformat(),
        },
    )
    return answer.status_code == 204


async def _starts_at(platform: Platform, event_id: str) -> datetime:
    answer = await platform.gateway.get(f"/events/api/events/{event_id}")
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["starts_at"])
