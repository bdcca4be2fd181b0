"""The organiser and public pages over HTTP, without a browser: forms, session, CSRF, errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from sto_events.service import EventsService
from stolive_shared import links
from stolive_shared.clock import utc_now
from stolive_shared.settings import KafkaSettings
from tests.integration.test_events_api import LINK_SECRET, running_events_app

SESSION_COOKIE = "sto_session"

Running = tuple[httpx.AsyncClient, EventsService, str]


@pytest.fixture(scope="module")
async def events_app(database_url: str, kafka: KafkaSettings) -> AsyncIterator[Running]:
    async with running_events_app(database_url, kafka) as running:
        api, _service, token = running
        await api.put(
            "/api/regions",
            json=[{"code": "drenthe", "name": "Drenthe", "province": "Drenthe"}],
            headers={"Authorization": f"Bearer {token}"},
        )
        yield running


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def logged_in(events_app: Running) -> httpx.AsyncClient:
    api, _service, token = events_app
    api.cookies.clear()
    form = await api.get("/organiser/inloggen")
    answer = await api.post(
        "/organiser/inloggen", data={"token": token, "csrf_token": csrf_of(form)}
    )
    assert answer.status_code == 303
    return api


def local(days: int, hour: int) -> str:
    day = datetime.now(UTC) + timedelta(days=days)
    return f"{day:%Y-%m-%d}T{hour:02d}:00"


class TestSession:
    async def test_logging_in_starts_a_server_side_session_for_the_whole_site(
        self, events_app: Running, database_url: str
    ) -> None:
        api, _service, token = events_app
        api.cookies.clear()
        form = await api.get("/organiser/inloggen")
        answer = await api.post(
            "/organiser/inloggen", data={"token": token, "csrf_token": csrf_of(form)}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/organiser/"
        cookie = next(
            h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        )
        assert "Path=/;" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        # Over plain http (this test's public URL) neither Secure nor the __Host- prefix.
        assert "Secure" not in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        # The cookie holds a random id; the database holds only its HMAC, never the id.
        conn = await asyncpg.connect(database_url)
        try:
            stored = await conn.fetch("SELECT id_hmac, organiser FROM organisers.sessions")
        finally:
            await conn.close()
        assert "integratietest@sto.example" in [row["organiser"] for row in stored]
        assert all(value.encode() not in row["id_hmac"] for row in stored)
        # The session works for the API too, as it does in every other service.
        me = (await api.get("/api/organiser/me")).json()
        assert (me["organiser"], me["role"]) == ("integratietest@sto.example", "programme")

    async def test_after_login_the_organiser_returns_where_they_were_sent_from(
        self, events_app: Running
    ) -> None:
        api, _service, token = events_app
        api.cookies.clear()
        sent = await api.get("/organiser/regios")
        assert sent.status_code == 303
        assert sent.headers["location"] == "/events/organiser/inloggen?volgende=/organiser/regios"
        form = await api.get("/organiser/inloggen?volgende=/organiser/regios")
        assert 'name="volgende" value="/organiser/regios"' in form.text
        answer = await api.post(
            "/organiser/inloggen",
            data={"token": token, "csrf_token": csrf_of(form), "volgende": "/organiser/regios"},
        )
        assert answer.headers["location"] == "/organiser/regios"
        # Never to another site: a way back that leaves this one is ignored.
        for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            api.cookies.clear()
            form = await api.get("/organiser/inloggen")
            answer = await api.post(
                "/organiser/inloggen",
                data={"token": token, "csrf_token": csrf_of(form), "volgende": elsewhere},
            )
            assert answer.headers["location"] == "/organiser/", elsewhere

    async def test_a_wrong_token_is_refused_on_the_page(self, events_app: Running) -> None:
        api, _service, _token = events_app
        api.cookies.clear()
        form = await api.get("/organiser/inloggen")
        answer = await api.post(
            "/organiser/inloggen", data={"token": "sto_fout", "csrf_token": csrf_of(form)}
        )
        assert answer.status_code == 403
        assert "Deze sleutel klopt niet." in answer.text
        assert SESSION_COOKIE not in api.cookies

    async def test_a_form_without_its_csrf_token_is_refused(self, events_app: Running) -> None:
        api, _service, token = events_app
        api.cookies.clear()
        await api.get("/organiser/inloggen")
        answer = await api.post("/organiser/inloggen", data={"token": token})
        assert answer.status_code == 403
        forged = await api.post(
            "/organiser/inloggen", data={"token": token, "csrf_token": "geraden"}
        )
        assert forged.status_code == 403

    async def test_pages_send_a_visitor_without_a_session_to_the_login(
        self, events_app: Running
    ) -> None:
        api, _service, _token = events_app
        api.cookies.clear()
        answer = await api.get("/organiser/")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/events/organiser/inloggen?volgende=/organiser/"

    async def test_logging_out_ends_the_session_on_the_server(self, events_app: Running) -> None:
        api = await logged_in(events_app)
        assert (await api.get("/organiser/")).status_code == 200
        replayed = api.cookies[SESSION_COOKIE]
        # The console's "Uitloggen" link opens a page whose button logs out.
        confirm = await api.get("/organiser/uitloggen")
        answer = await api.post("/organiser/uitloggen", data={"csrf_token": csrf_of(confirm)})
        assert answer.status_code == 303
        assert SESSION_COOKIE not in api.cookies
        assert (await api.get("/organiser/")).status_code == 303
        # The old cookie, sent again, opens nothing: the session itself is over.
        api.cookies.set(SESSION_COOKIE, replayed)
        assert (await api.get("/organiser/")).status_code == 303
        assert (await api.get("/api/organiser/me")).status_code == 401
        api.cookies.clear()


class TestPlanningOnPages:
    async def test_an_organiser_plans_publishes_moves_and_cancels_a_meeting(
        self, events_app: Running
    ) -> None:
        api = await logged_in(events_app)
        form = await api.get("/organiser/nieuw")
        created = await api.post(
            "/organiser/nieuw",
            data={
                "csrf_token": csrf_of(form),
                "kind": "regional_meeting",
                "title": "Regiobijeenkomst Drenthe",
                "starts_at": local(20, 13),
                "ends_at": local(20, 17),
                "venue": "Drenthe College, Emmen",
                "region_codes": ["drenthe"],
                "capacity": "50",
                "waitlist_enabled": "ja",
                "reminder_offsets_hours": "48, 2",
            },
        )
        assert created.status_code == 303, created.text
        page_url = created.headers["location"].split("?")[0]
        event_id = page_url.rsplit("/", 1)[1]
        page = await api.get(page_url)
        assert "Concept" in page.text

        published = await api.post(f"{page_url}/publiceren", data={"csrf_token": csrf_of(page)})
        assert published.status_code == 303
        public = (await api.get(f"/api/events/{event_id}")).json()
        assert public["reminder_offsets_hours"] == [48.0, 2.0]
        assert public["capacity"] == 50

        saved = await api.post(
            page_url,
            data={
                "csrf_token": csrf_of(page),
                "title": "Regiobijeenkomst Drenthe: techniek in de klas",
                "description": "",
                "venue": "Drenthe College, Emmen",
                "region_codes": ["drenthe"],
                "capacity": "55",
                "waitlist_enabled": "ja",
                "registration_closes_at": local(19, 12),
                "reminder_offsets_hours": "48, 2",
            },
        )
        assert saved.status_code == 303, saved.text
        details = (await api.get(f"/api/events/{event_id}")).json()
        assert details["title"] == "Regiobijeenkomst Drenthe: techniek in de klas"
        assert (details["capacity"], details["revision"]) == (55, 3)
        assert details["registration_closes_at"] is not None

        moved = await api.post(
            f"{page_url}/verplaatsen",
            data={
                "csrf_token": csrf_of(page),
                "starts_at": local(21, 13),
                "ends_at": local(21, 17),
            },
        )
        assert moved.status_code == 303
        assert (await api.get(f"/api/events/{event_id}")).json()["revision"] == 4

        cancelled = await api.post(
            f"{page_url}/annuleren", data={"csrf_token": csrf_of(page), "reason": "Zaal vervalt"}
        )
        assert cancelled.status_code == 303
        assert "Geannuleerd" in (await api.get(page_url)).text
        assert (await api.get(f"/api/events/{event_id}")).status_code == 404

    async def test_a_step_the_lifecycle_forbids_is_explained_with_409(
        self, events_app: Running
    ) -> None:
        api = await logged_in(events_app)
        form = await api.get("/organiser/nieuw")
        created = await api.post(
            "/organiser/nieuw",
            data={
                "csrf_token": csrf_of(form),
                "kind": "webinar",
                "title": "STO LIVE vanaf een pagina",
                "starts_at": local(9, 15),
                "ends_at": local(9, 16),
                "stream_url": "https://live.sterktechniekonderwijs.nl/pagina",
            },
        )
        page_url = created.headers["location"].split("?")[0]
        refused = await api.post(f"{page_url}/live", data={"csrf_token": csrf_of(form)})
        assert refused.status_code == 409
        assert "concept" in refused.text

    async def test_a_time_the_clock_skips_is_refused_in_dutch(self, events_app: Running) -> None:
        api = await logged_in(events_app)
        service = events_app[1]
        service.clock = lambda: datetime(2026, 1, 5, tzinfo=UTC)
        try:
            form = await api.get("/organiser/nieuw")
            fields = {
                "csrf_token": csrf_of(form),
                "kind": "webinar",
                "title": "STO LIVE rond de klok",
                "starts_at": "2026-03-29T02:30",
                "ends_at": "2026-03-29T04:00",
            }
            gap = await api.post("/organiser/nieuw", data=fields)
            assert gap.status_code == 422
            assert "bestaat niet in Nederland" in gap.text
            assert 'aria-invalid="true"' in gap.text

            overlap = await api.post(
                "/organiser/nieuw",
                data={**fields, "starts_at": "2026-10-25T02:30", "ends_at": "2026-10-25T04:00"},
            )
            assert overlap.status_code == 422
            assert "komt twee keer voor" in overlap.text
            assert 'name="starts_at_offset"' in overlap.text  # the page asks which one

            chosen = await api.post(
                "/organiser/nieuw",
                data={
                    **fields,
                    "starts_at": "2026-10-25T02:30",
                    "starts_at_offset": "+01:00",
                    "ends_at": "2026-10-25T04:00",
                },
            )
            assert chosen.status_code == 303, chosen.text
        finally:
            service.clock = utc_now

    async def test_invalid_input_is_shown_beside_the_field(self, events_app: Running) -> None:
        api = await logged_in(events_app)
        form = await api.get("/organiser/nieuw")
        answer = await api.post(
            "/organiser/nieuw",
            data={
                "csrf_token": csrf_of(form),
                "kind": "webinar",
                "title": "X",
                "starts_at": local(9, 15),
                "ends_at": local(9, 16),
                "stream_url": "geen adres",
            },
        )
        assert answer.status_code == 422
        assert 'id="title-error"' in answer.text
        assert 'id="stream_url-error"' in answer.text
        assert 'value="geen adres"' in answer.text  # what was typed stays


class TestPublicPages:
    async def test_agenda_region_and_watch_pages(self, events_app: Running) -> None:
        api, _service, token = events_app
        auth = {"Authorization": f"Bearer {token}"}
        start = datetime.now(UTC) + timedelta(days=3)
        event = (
            await api.post(
                "/api/events",
                json={
                    "kind": "webinar",
                    "title": "STO LIVE voor de agenda",
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(minutes=30)).isoformat(),
                },
                headers=auth,
            )
        ).json()
        await api.post(f"/api/events/{event['id']}/publish", headers=auth)
        api.cookies.clear()
        home = await api.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/agenda")
        agenda = await api.get("/agenda")
        assert agenda.status_code == 200
        assert '<html lang="nl">' in agenda.text
        assert "STO LIVE voor de agenda" in agenda.text
        assert "http://platform.test/agenda.ics" in agenda.text
        region = await api.get("/regio/drenthe")
        assert "STO LIVE voor de agenda" in region.text
        assert "/regio/drenthe/agenda.ics" in region.text
        assert (await api.get("/regio/nergens")).status_code == 404
        viewer = "v_" + "7" * 24
        token = links.watch_token(LINK_SECRET, uuid.UUID(event["id"]), viewer)
        watch = await api.get(f"/watch/{event['id']}", params={"v": token, "hartslag": "5"})
        assert f'data-viewer-id="{viewer}"' in watch.text
        assert f'data-viewer-token="{token}"' in watch.text
        assert 'data-heartbeat-s="5"' in watch.text
        assert 'data-beacon-url="/api/beacons"' in watch.text


class TestRegionsOnPages:
    async def test_an_organiser_imports_regions_from_a_csv_file(self, events_app: Running) -> None:
        api = await logged_in(events_app)
        page = await api.get("/organiser/regios")
        csv_file = "code;name;province\nwest-friesland;West-Friesland;Noord-Holland\n"
        answer = await api.post(
            "/organiser/regios",
            data={"csrf_token": csrf_of(page)},
            files={"bestand": ("regios.csv", csv_file.encode(), "text/csv")},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/organiser/regios?ingelezen=1"
        assert "West-Friesland" in (await api.get("/organiser/regios")).text

        broken = await api.post(
            "/organiser/regios",
            data={"csrf_token": csrf_of(page)},
            files={"bestand": ("regios.csv", b"code;name\nFOUT CODE;X\n", "text/csv")},
        )
        assert broken.status_code == 422
        assert "Niets ingelezen: regel 2" in broken.text
