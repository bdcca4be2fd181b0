"""The replay lifecycle and captions over HTTP, on a real PostgreSQL: an organiser sets or
changes an ended event's replay and its captions by API or on the organiser pages, each change
is one ``event.replay_published`` in the outbox (with the address before it) and one audit row
in the same transaction; the same values again are nothing; roles and scope as for editing an
event; bad addresses get a Dutch 422. Captions, given before the end or made later from the
recording, reach the watch page's ``<video>`` and its CSP, and the public "Terugblikken" page
lists the replays, newest first.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from sto_events.service import EventsService
from stolive_shared.db import create_pool
from stolive_shared.organisers.store import OrganiserStore
from stolive_shared.settings import KafkaSettings
from tests.integration.test_events_api import in_days, outbox_rows, running_events_app
from tests.integration.test_events_pages import csrf_of, logged_in
from tests.support import organiser_token

Running = tuple[httpx.AsyncClient, EventsService, str]
FIRST = "https://cdn.sterktechniekonderwijs.nl/terugkijken/40/index.m3u8"
SECOND = "https://cdn.sterktechniekonderwijs.nl/terugkijken/40-nagemonteerd/index.m3u8"


@pytest.fixture(scope="module")
async def events_app(database_url: str, kafka: KafkaSettings) -> AsyncIterator[Running]:
    async with running_events_app(database_url, kafka) as running:
        api, _service, token = running
        await api.put(
            "/api/regions",
            json=[
                {"code": "drenthe", "name": "Drenthe", "province": "Drenthe"},
                {"code": "groningen", "name": "Groningen", "province": "Groningen"},
            ],
            headers={"Authorization": f"Bearer {token}"},
        )
        yield running


@pytest.fixture
def api(events_app: Running) -> httpx.AsyncClient:
    events_app[0].cookies.clear()
    return events_app[0]


@pytest.fixture
def auth(events_app: Running) -> dict[str, str]:
    return {"Authorization": f"Bearer {events_app[2]}"}


async def token_of(database_url: str, name: str, role: str, **scope: Any) -> dict[str, str]:
    """The Authorization header of an account ``name`` with ``role`` (and scope)."""
    pool = await create_pool(database_url, "events", max_size=1)
    try:
        store = OrganiserStore(pool, "unused", idle=timedelta(0), lifetime=timedelta(0))
        return {"Authorization": f"Bearer {await organiser_token(store, name, role, **scope)}"}
    finally:
        await pool.close()


async def broadcast(
    api: httpx.AsyncClient,
    auth: dict[str, str],
    title: str,
    *,
    days: float = 10,
    steps: tuple[str, ...] = ("publish", "go-live", "end"),
    **extra: Any,
) -> str:
    body = {
        "kind": "webinar",
        "title": title,
        "stream_url": "https://cdn.sterktechniekonderwijs.nl/live/index.m3u8",
        **in_days(days, 1),
        **extra,
    }
    created = await api.post("/api/events", json=body, headers=auth)
    assert created.status_code == 201, created.text
    event_id: str = created.json()["id"]
    for step in steps:
        answer = await api.post(f"/api/events/{event_id}/{step}", json={}, headers=auth)
        assert answer.status_code == 200, answer.text
    return event_id


async def messages(database_url: str, event_id: str) -> list[dict[str, Any]]:
    """The event's outbox messages, oldest first: type and version (headers) and payload."""
    return [
        {"type": row["headers"]["type"], "version": row["headers"]["version"], **row["payload"]}
        for row in await outbox_rows(database_url, event_id)
    ]


async def audit_rows(database_url: str, event_id: str) -> list[dict[str, Any]]:
    """The audit log's ``event_changed`` rows about the event, oldest first."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT actor, service, action, outcome, detail FROM organisers.audit"
            " WHERE event_id = $1 AND action = 'event_changed' ORDER BY id",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()
    return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]


def media_sources(page: httpx.Response) -> list[str]:
    """The ``media-src`` sources of the page's Content-Security-Policy (``<track>`` needs it)."""
    policy = page.headers["content-security-policy"]
    return next(part.split() for part in policy.split(";") if "media-src" in part)


def track_of(page: httpx.Response) -> str | None:
    """The captions the watch page's ``<video>`` shows, if any."""
    found = re.search(r'<track kind="captions" src="([^"]+)"', page.text)
    return found.group(1) if found else None


class TestByApi:
    async def test_each_new_address_is_one_message_with_the_one_before_and_one_audit_row(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        event_id = await broadcast(api, auth, "STO LIVE #40: terugblik later")
        ended_revision = (await api.get(f"/api/events/{event_id}")).json()["revision"]

        first = await api.put(
            f"/api/events/{event_id}/replay", json={"replay_url": FIRST}, headers=auth
        )
        assert first.status_code == 200, first.text
        assert (first.json()["replay_url"], first.json()["revision"]) == (FIRST, ended_revision + 1)
        again = await api.put(
            f"/api/events/{event_id}/replay", json={"replay_url": FIRST}, headers=auth
        )
        assert again.json()["revision"] == ended_revision + 1
        second = await api.put(
            f"/api/events/{event_id}/replay", json={"replay_url": SECOND}, headers=auth
        )
        assert second.json()["revision"] == ended_revision + 2

        sent = await messages(database_url, event_id)
        published = [m for m in sent if m["type"] == "event.replay_published"]
        assert [
            (
                m["version"],
                m["previous_replay_url"],
                m["event"]["replay_url"],
                m["event"]["revision"],
            )
            for m in published
        ] == [
            (1, None, FIRST, ended_revision + 1),
            (1, FIRST, SECOND, ended_revision + 2),
        ]
        rows = await audit_rows(database_url, event_id)
        assert [(r["service"], r["outcome"], r["detail"]["replay_url"]) for r in rows] == [
            ("events", "done", FIRST),
            ("events", "done", SECOND),
        ]
        assert rows[1]["detail"]["previous_replay_url"] == FIRST
        assert rows[0]["actor"] == "integratietest@sto.example"

    async def test_ending_with_a_replay_says_ended_then_replay_published(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        event_id = await broadcast(api, auth, "STO LIVE #41", steps=("publish", "go-live"))
        ended = await api.post(
            f"/api/events/{event_id}/end", json={"replay_url": FIRST}, headers=auth
        )
        assert ended.status_code == 200, ended.text
        sent = await messages(database_url, event_id)
        assert [(m["type"], m["event"]["revision"]) for m in sent[-2:]] == [
            ("event.ended", ended.json()["revision"] - 1),
            ("event.replay_published", ended.json()["revision"]),
        ]
        assert sent[-1]["previous_replay_url"] is None

    async def test_not_before_the_end_nor_after_a_cancellation(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        live = await broadcast(api, auth, "STO LIVE nog live", steps=("publish", "go-live"))
        cancelled = await broadcast(api, auth, "STO LIVE gaat niet door", steps=("publish",))
        await api.post(f"/api/events/{cancelled}/cancel", json={"reason": "ziek"}, headers=auth)
        for event_id, status in ((live, "nu live"), (cancelled, "geannuleerd")):
            refused = await api.put(
                f"/api/events/{event_id}/replay", json={"replay_url": FIRST}, headers=auth
            )
            assert refused.status_code == 409
            assert status in refused.json()["detail"]
            assert not [m for m in await messages(database_url, event_id) if "replay" in m["type"]]
        unknown = await api.put(
            f"/api/events/{uuid.uuid4()}/replay", json={"replay_url": FIRST}, headers=auth
        )
        assert unknown.status_code == 404

    @pytest.mark.parametrize("address", ["rtmp://cdn.example/live", "javascript:alert(1)", ""])
    async def test_an_address_that_is_not_http_is_refused_in_dutch(
        self, api: httpx.AsyncClient, auth: dict[str, str], address: str
    ) -> None:
        event_id = await broadcast(api, auth, "STO LIVE met een raar adres")
        refused = await api.put(
            f"/api/events/{event_id}/replay", json={"replay_url": address}, headers=auth
        )
        assert refused.status_code == 422
        (problem,) = refused.json()["detail"]
        assert problem["loc"][-1] == "replay_url"
        assert "https://" in problem["msg"]

    async def test_the_same_roles_and_scope_as_editing_an_event(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        national = await broadcast(api, auth, "STO LIVE landelijk")
        regional = await broadcast(
            api,
            auth,
            "Regiobijeenkomst Drenthe",
            kind="regional_meeting",
            region_codes=["drenthe"],
            capacity=40,
            stream_url=None,
        )
        body = {"replay_url": FIRST}
        assert (await api.put(f"/api/events/{national}/replay", json=body)).status_code == 401
        support = await token_of(database_url, "ondersteuning", "support")
        answer = await api.put(f"/api/events/{national}/replay", json=body, headers=support)
        assert answer.status_code == 403
        groningen = await token_of(database_url, "groningen", "regional", regions=("groningen",))
        answer = await api.put(f"/api/events/{regional}/replay", json=body, headers=groningen)
        assert answer.status_code == 403
        drenthe = await token_of(database_url, "drenthe", "regional", regions=("drenthe",))
        answer = await api.put(f"/api/events/{regional}/replay", json=body, headers=drenthe)
        assert answer.status_code == 200, answer.text


class TestOnTheOrganiserPages:
    async def test_the_ended_events_page_and_its_hub_publish_the_replay(
        self, events_app: Running, auth: dict[str, str], database_url: str
    ) -> None:
        api = events_app[0]
        event_id = await broadcast(api, auth, "STO LIVE #42 op de pagina")
        await logged_in(events_app)
        page = await api.get(f"/organiser/evenementen/{event_id}")
        assert "Terugblik publiceren" in page.text
        wrong = await api.post(
            f"/organiser/evenementen/{event_id}/terugblik",
            data={"csrf_token": csrf_of(page), "replay_url": "rtmp://cdn.example/live"},
        )
        assert wrong.status_code == 422
        assert "Dit is geen geldig webadres (begin met https://)." in wrong.text
        assert 'value="rtmp://cdn.example/live"' in wrong.text  # shown again to correct

        done = await api.post(
            f"/organiser/evenementen/{event_id}/terugblik",
            data={"csrf_token": csrf_of(page), "replay_url": FIRST},
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/organiser/evenementen/{event_id}?terugblik=1"
        assert "De terugblik is gepubliceerd." in (await api.get(done.headers["location"])).text

        hub = await api.get(f"/organiser/evenementen/{event_id}/overzicht")
        assert "Terugblik publiceren" in hub.text
        from_hub = await api.post(
            f"/organiser/evenementen/{event_id}/terugblik",
            data={"csrf_token": csrf_of(hub), "replay_url": SECOND, "terug": "overzicht"},
        )
        assert from_hub.headers["location"] == (
            f"/organiser/evenementen/{event_id}/overzicht?terugblik=1"
        )
        published = [
            (m["previous_replay_url"], m["event"]["replay_url"])
            for m in await messages(database_url, event_id)
            if m["type"] == "event.replay_published"
        ]
        assert published == [(None, FIRST), (FIRST, SECOND)]
        assert len(await audit_rows(database_url, event_id)) == 2

    async def test_a_cancelled_event_has_no_replay_form_and_refuses_one(
        self, events_app: Running, auth: dict[str, str]
    ) -> None:
        api = events_app[0]
        event_id = await broadcast(api, auth, "STO LIVE afgelast", steps=("publish",))
        await api.post(f"/api/events/{event_id}/cancel", json={}, headers=auth)
        await logged_in(events_app)
        page = await api.get(f"/organiser/evenementen/{event_id}")
        assert "Terugblik publiceren" not in page.text
        form = await api.get("/organiser/nieuw")  # a form of the same session, for its token
        refused = await api.post(
            f"/organiser/evenementen/{event_id}/terugblik",
            data={"csrf_token": csrf_of(form), "replay_url": FIRST},
        )
        assert refused.status_code == 409
        assert "alleen bij een afgelopen evenement" in refused.text


class TestCaptions:
    async def test_captions_reach_the_video_as_a_track_and_the_csp_allows_them(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        vtt = "http://captions.sto.test:8088/nl/40.vtt"
        event_id = await broadcast(
            api, auth, "STO LIVE met ondertiteling", steps=("publish",), captions_url=vtt
        )
        assert (await api.get(f"/api/events/{event_id}")).json()["captions_url"] == vtt
        page = await api.get(f"/watch/{event_id}")
        assert re.search(
            r'<track kind="captions" src="http://captions.sto.test:8088/nl/40.vtt" srclang="nl"'
            r' label="Nederlands" default>',
            page.text,
        )
        assert 'crossorigin="anonymous"' in page.text
        assert "http://captions.sto.test:8088" in media_sources(page)

        changed = await api.patch(
            f"/api/events/{event_id}", json={"captions_url": "ftp://x/nl.vtt"}, headers=auth
        )
        assert changed.status_code == 422
        assert "ondertiteling (WebVTT) begint met https://" in changed.text
        await api.patch(f"/api/events/{event_id}", json={"captions_url": None}, headers=auth)
        sent = await messages(database_url, event_id)
        updated = [m for m in sent if m["type"] == "event.updated"]
        assert updated[-1]["changed_fields"] == ["captions_url"]
        assert updated[-1]["event"]["captions_url"] is None
        assert "<track" not in (await api.get(f"/watch/{event_id}")).text

    async def test_captions_made_after_the_end_come_with_the_replay_to_the_page_and_topic(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        """Captions are often made from the recording, so they come (or change) after the end,
        with the replay: the address as it is, the captions new."""
        live_vtt = "http://captions.sto.test:8088/nl/43.vtt"
        made_later = "http://ondertiteling.sto.test:8089/terugblik/43.vtt"
        event_id = await broadcast(
            api, auth, "STO LIVE #43: ondertiteling achteraf", captions_url=live_vtt
        )
        replay = f"/api/events/{event_id}/replay"
        first = await api.put(replay, json={"replay_url": FIRST}, headers=auth)
        assert first.json()["captions_url"] == live_vtt  # not named: as they were
        written = await messages(database_url, event_id)

        changed = await api.put(
            replay, json={"replay_url": FIRST, "captions_url": made_later}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["revision"] == first.json()["revision"] + 1
        page = await api.get(f"/watch/{event_id}")
        assert track_of(page) == made_later
        assert "http://ondertiteling.sto.test:8089" in media_sources(page)
        assert "http://captions.sto.test:8088" not in media_sources(page)
        sent = (await messages(database_url, event_id))[len(written) :]
        assert [
            (
                m["type"],
                m["previous_replay_url"],
                m["event"]["replay_url"],
                m["event"]["captions_url"],
            )
            for m in sent
        ] == [("event.replay_published", FIRST, FIRST, made_later)]
        audit = (await audit_rows(database_url, event_id))[-1]["detail"]
        assert (audit["captions_url"], audit["previous_captions_url"]) == (made_later, live_vtt)
        assert audit["replay_url"] == audit["previous_replay_url"] == FIRST

        audited = len(await audit_rows(database_url, event_id))
        for same in ({"replay_url": FIRST}, {"replay_url": FIRST, "captions_url": made_later}):
            again = await api.put(replay, json=same, headers=auth)
            assert again.json()["revision"] == changed.json()["revision"]
        assert len(await messages(database_url, event_id)) == len(written) + 1
        assert len(await audit_rows(database_url, event_id)) == audited

        refused = await api.put(
            replay, json={"replay_url": FIRST, "captions_url": "ftp://x/nl.vtt"}, headers=auth
        )
        assert refused.status_code == 422
        (problem,) = refused.json()["detail"]
        assert problem["loc"][-1] == "captions_url"
        assert problem["msg"] == (
            "Het adres van de ondertiteling (WebVTT) begint met https:// of http://."
        )

        removed = await api.put(
            replay, json={"replay_url": FIRST, "captions_url": None}, headers=auth
        )
        assert removed.json()["captions_url"] is None
        assert (await messages(database_url, event_id))[-1]["event"]["captions_url"] is None
        assert track_of(await api.get(f"/watch/{event_id}")) is None

    async def test_the_replay_form_shows_the_captions_and_changes_them_only_when_changed(
        self, events_app: Running, auth: dict[str, str], database_url: str
    ) -> None:
        api = events_app[0]
        live_vtt = "http://captions.sto.test:8088/nl/44.vtt"
        made_later = "https://ondertiteling.sto.test/terugblik/44.vtt"
        event_id = await broadcast(api, auth, "STO LIVE #44 formulier", captions_url=live_vtt)
        await api.put(f"/api/events/{event_id}/replay", json={"replay_url": FIRST}, headers=auth)
        await logged_in(events_app)
        event_page = await api.get(f"/organiser/evenementen/{event_id}")
        assert f'name="captions_url" value="{live_vtt}"' in event_page.text
        hub = await api.get(f"/organiser/evenementen/{event_id}/overzicht")
        assert "Ondertiteling (WebVTT)" in hub.text
        assert "de kijkpagina toont ze bij de uitzending en de terugblik." in hub.text
        assert f'name="captions_url" value="{live_vtt}"' in hub.text
        step = f"/organiser/evenementen/{event_id}/terugblik"
        form = {"csrf_token": csrf_of(hub), "replay_url": FIRST, "terug": "overzicht"}
        written = len(await messages(database_url, event_id))

        untouched = await api.post(step, data={**form, "captions_url": live_vtt})
        assert untouched.status_code == 303
        assert len(await messages(database_url, event_id)) == written

        wrong = await api.post(step, data={**form, "captions_url": "webvtt.nl"})
        assert wrong.status_code == 422
        assert "Dit is geen geldig webadres (begin met https://)." in wrong.text
        assert 'name="captions_url" value="webvtt.nl"' in wrong.text  # shown again to correct

        done = await api.post(step, data={**form, "captions_url": made_later})
        assert done.headers["location"].endswith("/overzicht?terugblik=1")
        assert track_of(await api.get(f"/watch/{event_id}")) == made_later
        emptied = await api.post(step, data={**form, "captions_url": ""})
        assert emptied.status_code == 303
        sent = (await messages(database_url, event_id))[written:]
        assert [(m["type"], m["event"]["captions_url"]) for m in sent] == [
            ("event.replay_published", made_later),
            ("event.replay_published", None),
        ]
        assert track_of(await api.get(f"/watch/{event_id}")) is None

    async def test_the_organiser_form_takes_the_captions_in_dutch(
        self, events_app: Running, auth: dict[str, str]
    ) -> None:
        api = events_app[0]
        event_id = await broadcast(api, auth, "STO LIVE formulier", steps=())
        await logged_in(events_app)
        page = await api.get(f"/organiser/evenementen/{event_id}")
        assert "Ondertiteling (WebVTT)" in page.text
        refused = await api.post(
            f"/organiser/evenementen/{event_id}",
            data={"csrf_token": csrf_of(page), "title": "STO LIVE formulier",
                  "captions_url": "webvtt.nl"},
        )  # fmt: skip
        assert refused.status_code == 422
        assert "Dit is geen geldig webadres (begin met https://)." in refused.text
        saved = await api.post(
            f"/organiser/evenementen/{event_id}",
            data={"csrf_token": csrf_of(page), "title": "STO LIVE formulier",
                  "captions_url": "https://cdn.example/nl.vtt"},
        )  # fmt: skip
        assert saved.status_code == 303
        assert (await api.get(f"/api/organiser/events/{event_id}")).json()[
            "captions_url"
        ] == "https://cdn.example/nl.vtt"


class TestThePublicReplaysPage:
    async def test_newest_first_with_date_and_watch_link_and_linked_from_the_agenda(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        older = await broadcast(api, auth, "Terugblik ouder", days=20)
        newer = await broadcast(api, auth, "Terugblik nieuwer", days=30)
        without = await broadcast(api, auth, "Zonder terugblik", days=40)
        for event_id in (older, newer):
            await api.put(
                f"/api/events/{event_id}/replay", json={"replay_url": FIRST}, headers=auth
            )
        page = await api.get("/terugblikken")
        assert page.status_code == 200
        text = page.text
        assert text.index("Terugblik nieuwer") < text.index("Terugblik ouder")
        assert "Zonder terugblik" not in text
        assert f'href="http://platform.test/watch/{newer}"' in text
        assert re.search(r"Uitgezonden op <time[^>]*>\w+dag \d+ \w+ \d{4}, \d\d:\d\d</time>", text)
        assert 'href="/terugblikken">Terugblikken</a>' in (await api.get("/agenda")).text
        replay_page = await api.get(f"/watch/{older}")
        assert 'href="/terugblikken">Alle terugblikken</a>' in replay_page.text
        pending = await api.get(f"/watch/{without}")
        assert "Alle terugblikken" in pending.text
