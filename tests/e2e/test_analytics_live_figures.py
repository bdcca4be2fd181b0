"""Real beacons through the events service's endpoint, counted by the analytics worker, read
back over HTTP through the gateway with an organiser token: the whole path as people use it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from stolive_shared import links
from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually, form_token


async def beacons(platform: Platform, event_id: str, *items: tuple[str, str]) -> None:
    answer = await platform.gateway.post(
        "/events/api/beacons",
        json=[
            {
                "event_id": event_id,
                "viewer_id": viewer,
                "action": action,
                "mode": "live",
                "client_ts": datetime.now(UTC).isoformat(),
            }
            for viewer, action in items
        ],
    )
    assert answer.status_code == 204, answer.text


async def live(platform: Platform, event_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await platform.organiser_json(f"/analytics/api/events/{event_id}/live")
    return body


async def viewer_of(platform: Platform, email: str) -> str | None:
    """The registrant's viewer id, once analytics knows them (their watch link names it)."""
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        viewer: str | None = await conn.fetchval(
            """SELECT a.viewer_id FROM analytics.registrants a
               JOIN registrations.registrations r ON r.id = a.registration_id
               WHERE r.email = $1""",
            email,
        )
        return viewer
    finally:
        await conn.close()


async def test_beacons_through_the_events_endpoint_become_live_figures_per_region(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, title="STO LIVE: live cijfers")
    signed_up = await platform.gateway.post(
        f"/registrations/api/events/{event_id}/registrations",
        json={
            "name": "Els Mulder",
            "email": "els@esdal.nl",
            "organisation": "Esdal College",
            "role": "docent",
            "region_code": "drenthe",
            "privacy_consent": True,
            "form_token": await form_token(platform.gateway, "/registrations", event_id),
        },
    )
    assert signed_up.status_code == 202, signed_up.text
    async with platform.organiser_browser() as organiser:

        async def dashboard() -> str | None:
            page = await organiser.get(f"/analytics/dashboard/{event_id}")
            assert page.status_code == 200
            return page.text if 'id="status"' in page.text else None

        shown = await eventually(dashboard, what="the dashboard to know the event")
    # Dutch, before the broadcast: its status, a decimal comma, no no-shows days ahead.
    assert 'status: <span id="status">gepubliceerd</span>' in shown
    assert re.search(r'<dd id="average">\d+,\d</dd>', shown)
    assert "Niet verschenen: bekend na afloop" in shown
    viewer = await eventually(
        lambda: viewer_of(platform, "els@esdal.nl"), what="the registrant in analytics"
    )
    assert (await platform.organiser.post(f"/api/events/{event_id}/go-live")).status_code == 200

    # The events service learns the status change from its own write; retry until it takes
    # live beacons, then two anonymous viewers and the registrant join.
    async def accepted() -> bool:
        answer = await platform.gateway.post(
            "/events/api/beacons",
            json={
                "event_id": event_id,
                "viewer_id": viewer,
                # The registrant's own watch link proves the viewer id (links.watch_token).
                "viewer_token": links.watch_token(
                    platform.link_secret, uuid.UUID(event_id), viewer
                ),
                "action": "join",
                "mode": "live",
                "client_ts": datetime.now(UTC).isoformat(),
            },
        )
        return answer.status_code == 204

    await eventually(accepted, what="the beacon endpoint to accept live beacons")
    await beacons(platform, event_id, ("anon_a", "join"), ("anon_b", "join"))
    body = await eventually(
        lambda: _when(
            live(platform, event_id), lambda b: b["by_region"] == {"drenthe": 1, "onbekend": 2}
        ),
        what="3 live viewers, one from Drenthe",
    )
    assert body["viewers"] == 3
    assert body["by_role"] == {"docent": 1, "onbekend": 2}

    await beacons(platform, event_id, ("anon_a", "leave"))
    await eventually(
        lambda: _when(live(platform, event_id), lambda b: b["viewers"] == 2), what="2 after a leave"
    )
    unauthenticated = await platform.gateway.get(f"/analytics/api/events/{event_id}/live")
    assert unauthenticated.status_code == 401
    figures("analytics e2e: 3 joins via POST /events/api/beacons -> 3 live (1 drenthe); leave -> 2")


async def _when(value: Any, condition: Callable[[Any], bool]) -> Any:
    found = await value
    return found if condition(found) else None
