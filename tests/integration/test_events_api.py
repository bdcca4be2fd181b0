"""The events API over HTTP, on a real PostgreSQL and broker: what organisers and the public get.

The app runs in-process (its lifespan too) against a fresh database; every change must leave
exactly one message per step in the outbox, keyed by the event id.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import icalendar
import pytest

from sto_events.bootstrap import DEFINITION
from sto_events.config import EventsSettings
from sto_events.service import EventsService
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.runtime import Runtime
from stolive_shared.settings import KafkaSettings
from tests.support import organiser_token

LINK_SECRET = "integration-test-link-secret-0123456789"


@contextlib.asynccontextmanager
async def running_events_app(
    database_url: str, kafka: KafkaSettings, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, EventsService, str]]:
    """The events app with its lifespan, a client for it, its service and an organiser token."""
    await apply_migrations(database_url, "events", [DEFINITION.migrations])
    settings = EventsSettings(
        database_url=database_url,
        kafka=kafka,
        link_secret=LINK_SECRET,
        public_base_url="http://platform.test",
        # One test client logs in again and again: the login limit is the security suite's.
        login_rate_per_minute=0,
        **overrides,
    )
    pool = await create_pool(database_url, "events", max_size=5)
    try:
        app = DEFINITION.app(Runtime(settings=settings, pool=pool))
        service: EventsService = app.state.events
        token = await organiser_token(app.state.organisers.store, "integratietest")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://events.test"
            ) as client,
        ):
            yield client, service, token
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def events_app(
    database_url: str, kafka: KafkaSettings
) -> AsyncIterator[tuple[httpx.AsyncClient, EventsService, str]]:
    async with running_events_app(database_url, kafka) as running:
        client, _service, token = running
        regions_csv = (
            "code;name;province;supra_region\n"
            "groningen;Groningen;Groningen;Noord-Nederland\n"
            "drenthe;Drenthe;Drenthe;Noord-Nederland\n"
            "rotterdam-zuid;Rotterdam Zuid;Zuid-Holland;Zuid-Holland\n"
        )
        answer = await client.post(
            "/api/regions/import",
            content=regions_csv.encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        )
        assert answer.json() == {"imported": 3}
        yield running


@pytest.fixture
def api(events_app: tuple[httpx.AsyncClient, EventsService, str]) -> httpx.AsyncClient:
    return events_app[0]


@pytest.fixture
def auth(events_app: tuple[httpx.AsyncClient, EventsService, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {events_app[2]}"}


def in_days(days: float, hours: float = 1.0) -> dict[str, str]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return {
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(),
    }


def webinar(title: str, days: float = 10, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "webinar",
        "title": title,
        "stream_url": "https://live.sterktechniekonderwijs.nl/test",
        **in_days(days, 0.5),
        **extra,
    }


def meeting(title: str, regions: list[str], days: float = 12, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "regional_meeting",
        "title": title,
        "venue": "Alfa-college, Groningen",
        "region_codes": regions,
        "capacity": 60,
        **in_days(days, 3.5),
        **extra,
    }


async def created(api: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> str:
    answer = await api.post("/api/events", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    event_id: str = answer.json()["id"]
    return event_id


async def outbox_rows(database_url: str, event_id: str) -> list[dict[str, Any]]:
    """The event's messages waiting in (or published from) the outbox, oldest first."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "events"})
    try:
        rows = await conn.fetch(
            "SELECT topic, key, headers, payload FROM outbox WHERE key = $1 ORDER BY id", event_id
        )
    finally:
        await conn.close()
    return [
        {
            "topic": row["topic"],
            "headers": json.loads(row["headers"]),
            "payload": json.loads(row["payload"]),
        }
        for row in rows
    ]


class TestAccess:
    async def test_a_write_without_a_credential_is_401(self, api: httpx.AsyncClient) -> None:
        answer = await api.post("/api/events", json=webinar("STO LIVE zonder sleutel"))
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"

    async def test_a_write_with_a_wrong_credential_is_403(self, api: httpx.AsyncClient) -> None:
        answer = await api.post(
            "/api/events",
            json=webinar("STO LIVE met verkeerde sleutel"),
            headers={"Authorization": "Bearer sto_not-a-real-token"},
        )
        assert answer.status_code == 403

    async def test_every_lifecycle_step_needs_a_credential(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        event_id = await created(api, auth, webinar("STO LIVE afgeschermd"))
        for step in ("publish", "go-live", "end", "cancel", "reschedule"):
            assert (await api.post(f"/api/events/{event_id}/{step}", json={})).status_code == 401
        assert (await api.patch(f"/api/events/{event_id}", json={})).status_code == 401

    async def test_drafts_are_not_public(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        event_id = await created(api, auth, webinar("STO LIVE nog geheim"))
        assert (await api.get(f"/api/events/{event_id}")).status_code == 404
        assert (await api.get(f"/api/organiser/events/{event_id}", headers=auth)).status_code == 200
        public = (await api.get("/api/events", params={"status": "draft"})).json()
        assert public == []


class TestLifecycle:
    async def test_each_step_is_one_versioned_message_keyed_by_the_event(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        event_id = await created(api, auth, webinar("STO LIVE #1 van de levenscyclus"))
        assert (await api.post(f"/api/events/{event_id}/publish", headers=auth)).json()[
            "status"
        ] == "published"
        moved = await api.post(
            f"/api/events/{event_id}/reschedule", json=in_days(14, 0.5), headers=auth
        )
        assert moved.json()["revision"] == 3
        await api.patch(f"/api/events/{event_id}", json={"capacity": 500}, headers=auth)
        assert (await api.post(f"/api/events/{event_id}/go-live", headers=auth)).json()[
            "status"
        ] == "live"
        ended = await api.post(
            f"/api/events/{event_id}/end",
            json={"replay_url": "https://live.sterktechniekonderwijs.nl/terugkijken/1"},
            headers=auth,
        )
        assert ended.json()["status"] == "ended"
        assert ended.json()["replay_url"].endswith("/terugkijken/1")

        rows = await outbox_rows(database_url, event_id)
        assert [row["headers"]["type"] for row in rows] == [
            "event.published",
            "event.rescheduled",
            "event.updated",
            "event.went_live",
            "event.ended",
            "event.replay_published",
        ]
        assert {row["topic"] for row in rows} == {"sto.events"}
        assert [row["headers"]["version"] for row in rows] == ["2"] * 5 + ["1"]
        assert [row["payload"]["event"]["revision"] for row in rows] == [2, 3, 4, 5, 6, 7]

    async def test_illegal_transitions_are_refused_with_409(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        draft = await created(api, auth, webinar("STO LIVE concept"))
        refused = await api.post(f"/api/events/{draft}/end", json={}, headers=auth)
        assert refused.status_code == 409
        assert "concept" in refused.json()["detail"]

        ended = await created(api, auth, webinar("STO LIVE al voorbij"))
        for step in ("publish", "go-live", "end"):
            await api.post(f"/api/events/{ended}/{step}", json={}, headers=auth)
        again = await api.post(f"/api/events/{ended}/reschedule", json=in_days(20), headers=auth)
        assert again.status_code == 409
        assert "afgelopen" in again.json()["detail"]

        cancelled = await created(api, auth, webinar("STO LIVE gaat niet door"))
        await api.post(f"/api/events/{cancelled}/cancel", json={"reason": "ziek"}, headers=auth)
        assert (await api.post(f"/api/events/{cancelled}/publish", headers=auth)).status_code == 409
        assert (
            await api.post(f"/api/events/{uuid.uuid4()}/publish", headers=auth)
        ).status_code == 404

    async def test_a_new_event_ends_after_it_starts_and_starts_in_the_future(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        backwards = webinar("STO LIVE achterstevoren")
        backwards["ends_at"] = backwards["starts_at"]
        answer = await api.post("/api/events", json=backwards, headers=auth)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "ends_at"]
        past = await api.post(
            "/api/events", json=webinar("STO LIVE gisteren", days=-1), headers=auth
        )
        assert past.status_code == 422
        assert past.json()["detail"][0]["loc"] == ["body", "starts_at"]


class TestDetails:
    async def test_the_registration_window_and_details_are_changed_by_patch(
        self, api: httpx.AsyncClient, auth: dict[str, str], database_url: str
    ) -> None:
        event_id = await created(api, auth, meeting("Details: Groningen", ["groningen"], days=15))
        await api.post(f"/api/events/{event_id}/publish", headers=auth)
        closes = (datetime.now(UTC) + timedelta(days=14)).replace(microsecond=0)
        changed = await api.patch(
            f"/api/events/{event_id}",
            json={"registration_closes_at": closes.isoformat(), "capacity": 80},
            headers=auth,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["registration_closes_at"] == closes.isoformat().replace("+00:00", "Z")
        [*_, update] = await outbox_rows(database_url, event_id)
        assert update["headers"]["type"] == "event.updated"
        assert update["payload"]["changed_fields"] == ["capacity", "registration_closes_at"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"region_codes": []}, "region_codes"),
            ({"capacity": None}, "capacity"),
            ({"reminder_offsets_hours": [24, -1]}, "reminder_offsets_hours"),
            ({"registration_closes_at": "2099-01-01T10:00:00+01:00"}, "registration_closes_at"),
        ],
        ids=["no-region", "no-capacity", "reminder-after-start", "closes-after-the-end"],
    )
    async def test_a_change_must_leave_a_valid_event(
        self, api: httpx.AsyncClient, auth: dict[str, str], change: dict[str, Any], field: str
    ) -> None:
        event_id = await created(api, auth, meeting("Details: geldig", ["groningen"], days=16))
        answer = await api.patch(f"/api/events/{event_id}", json=change, headers=auth)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", field]


class TestAmsterdamTime:
    """The clock stands in early 2026 here, so the 2026 changes of the clock lie ahead."""

    @pytest.fixture(autouse=True)
    def january_2026(self, events_app: tuple[httpx.AsyncClient, EventsService, str]) -> Any:
        service = events_app[1]
        real: Callable[[], datetime] = service.clock
        service.clock = lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        yield
        service.clock = real

    async def test_a_time_in_the_spring_forward_gap_is_refused(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        body = webinar(
            "STO LIVE in het gat", starts_at="2026-03-29T02:30", ends_at="2026-03-29T04:00"
        )
        answer = await api.post("/api/events", json=body, headers=auth)
        assert answer.status_code == 422
        [problem] = answer.json()["detail"]
        assert problem["loc"] == ["body", "starts_at"]
        assert "bestaat niet" in problem["msg"]

    async def test_a_time_in_the_autumn_overlap_needs_an_offset(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        body = webinar("STO LIVE dubbel", starts_at="2026-10-25T02:30", ends_at="2026-10-25T04:00")
        answer = await api.post("/api/events", json=body, headers=auth)
        assert answer.status_code == 422
        assert "twee keer" in answer.json()["detail"][0]["msg"]

        body["starts_at"] = "2026-10-25T02:30+01:00"
        settled = await api.post("/api/events", json=body, headers=auth)
        assert settled.status_code == 201, settled.text
        assert settled.json()["starts_at"] == "2026-10-25T01:30:00Z"
        assert settled.json()["ends_at"] == "2026-10-25T03:00:00Z"

    async def test_rescheduling_into_the_gap_is_refused_too(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        event_id = await created(
            api,
            auth,
            webinar(
                "STO LIVE verschuift", starts_at="2026-03-28T15:30", ends_at="2026-03-28T16:00"
            ),
        )
        answer = await api.post(
            f"/api/events/{event_id}/reschedule",
            json={"starts_at": "2026-03-29T02:00", "ends_at": "2026-03-29T03:30"},
            headers=auth,
        )
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "starts_at"]

    async def test_wall_clock_times_are_stored_as_utc_on_both_sides_of_the_change(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        winter = await api.post(
            "/api/events",
            json=webinar(
                "STO LIVE winter", starts_at="2026-03-28T15:30", ends_at="2026-03-28T16:00"
            ),
            headers=auth,
        )
        summer = await api.post(
            "/api/events",
            json=webinar(
                "STO LIVE zomer", starts_at="2026-03-29T15:30", ends_at="2026-03-29T16:00"
            ),
            headers=auth,
        )
        assert winter.json()["starts_at"] == "2026-03-28T14:30:00Z"
        assert summer.json()["starts_at"] == "2026-03-29T13:30:00Z"


class TestSeries:
    async def test_webinars_are_numbered_broadcasts_of_sto_live_unless_told_otherwise(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        first = (await api.post("/api/events", json=webinar("Reeks A"), headers=auth)).json()
        second = (await api.post("/api/events", json=webinar("Reeks B"), headers=auth)).json()
        assert first["series_code"] == second["series_code"] == "sto-live"
        assert second["series_number"] == first["series_number"] + 1
        series = (await api.get("/api/series")).json()
        assert {"code": "sto-live", "title": "STO LIVE"}.items() <= series[0].items()

    async def test_a_taken_number_is_a_conflict(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        await api.put("/api/series/techniek-talks", json={"title": "Techniek Talks"}, headers=auth)
        body = webinar("Techniek Talks #7", series_code="techniek-talks", series_number=7)
        assert (await api.post("/api/events", json=body, headers=auth)).status_code == 201
        again = await api.post("/api/events", json=body, headers=auth)
        assert again.status_code == 409
        assert "#7" in again.json()["detail"]
        unknown = webinar("Onbekende reeks", series_code="bestaat-niet")
        assert (await api.post("/api/events", json=unknown, headers=auth)).status_code == 422

    async def test_only_webinars_belong_to_a_series(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        body = meeting("Regio met reeks", ["groningen"], series_code="sto-live")
        answer = await api.post("/api/events", json=body, headers=auth)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "series_code"]


class TestListsAndCalendar:
    async def test_events_filter_by_region_kind_status_and_period(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        north = await created(
            api, auth, meeting("Filter: Noord", ["groningen", "drenthe"], days=40)
        )
        south = await created(api, auth, meeting("Filter: Zuid", ["rotterdam-zuid"], days=41))
        national = await created(api, auth, webinar("Filter: landelijk", days=42))
        for event_id in (north, south, national):
            await api.post(f"/api/events/{event_id}/publish", headers=auth)
        period = {
            "starts_from": (datetime.now(UTC) + timedelta(days=39)).isoformat(),
            "starts_before": (datetime.now(UTC) + timedelta(days=43)).isoformat(),
        }

        async def ids(**params: str) -> list[str]:
            answer = await api.get("/api/events", params={**period, **params})
            assert answer.status_code == 200, answer.text
            return [event["id"] for event in answer.json()]

        assert await ids() == [north, south, national]
        assert await ids(region="drenthe") == [north, national]
        assert await ids(region="rotterdam-zuid") == [south, national]
        assert await ids(kind="webinar") == [national]
        assert await ids(status="live") == []
        assert await ids(region="drenthe", kind="regional_meeting") == [north]

    async def test_the_calendar_groups_a_year_by_amsterdam_month(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        # 00:30 on New Year's Day in Amsterdam is still 31 December in UTC.
        body = webinar(
            "Nieuwjaarsuitzending", starts_at="2028-01-01T00:30", ends_at="2028-01-01T01:00"
        )
        event_id = await created(api, auth, body)
        await api.post(f"/api/events/{event_id}/publish", headers=auth)
        year_2028 = (await api.get("/calendar", params={"year": 2028})).json()
        assert year_2028["timezone"] == "Europe/Amsterdam"
        assert [e["id"] for e in year_2028["months"][0]["events"]] == [event_id]
        assert year_2028["months"][0]["name"] == "januari"
        year_2027 = (await api.get("/calendar", params={"year": 2027})).json()
        assert event_id not in [e["id"] for m in year_2027["months"] for e in m["events"]]
        assert (await api.get("/calendar", params={"year": 1999})).status_code == 422


def parsed_feed(answer: httpx.Response) -> dict[str, icalendar.Component]:
    """A feed read by a real iCalendar parser: its VEVENTs by UID."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(answer.content)
    return {str(entry["UID"]): entry for entry in calendar.walk("VEVENT")}


class TestCalendarFeeds:
    async def test_the_feed_has_published_events_with_uids_that_survive_a_reschedule(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        event_id = await created(api, auth, webinar("Feed: STO LIVE verhuist", days=30))
        draft_id = await created(api, auth, webinar("Feed: nog een concept", days=30))
        await api.post(f"/api/events/{event_id}/publish", headers=auth)
        before = parsed_feed(await api.get("/agenda.ics"))
        uid = f"{event_id}@stolive.sterktechniekonderwijs.nl"
        assert uid in before
        assert f"{draft_id}@stolive.sterktechniekonderwijs.nl" not in before
        assert str(before[uid]["SUMMARY"]) == "Feed: STO LIVE verhuist"
        assert str(before[uid]["URL"]) == f"http://platform.test/watch/{event_id}"

        await api.post(f"/api/events/{event_id}/reschedule", json=in_days(31, 0.5), headers=auth)
        after = parsed_feed(await api.get("/agenda.ics"))
        assert after[uid].decoded("DTSTART") > before[uid].decoded("DTSTART")
        assert after[uid].decoded("SEQUENCE") == before[uid].decoded("SEQUENCE") + 1

    async def test_a_region_feed_has_its_meetings_and_the_national_events(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        here = await created(api, auth, meeting("Feed: Groningen", ["groningen"]))
        there = await created(api, auth, meeting("Feed: Rotterdam", ["rotterdam-zuid"]))
        national = await created(api, auth, webinar("Feed: voor iedereen"))
        for event_id in (here, there, national):
            await api.post(f"/api/events/{event_id}/publish", headers=auth)
        feed = parsed_feed(await api.get("/regio/groningen/agenda.ics"))
        uids = {uid.split("@")[0] for uid in feed}
        assert {here, national} <= uids
        assert there not in uids
        meeting_entry = feed[f"{here}@stolive.sterktechniekonderwijs.nl"]
        assert str(meeting_entry["LOCATION"]) == "Alfa-college, Groningen"
        assert str(meeting_entry["URL"]).endswith(f"/registrations/events/{here}/aanmelden")
        assert (await api.get("/regio/nergens/agenda.ics")).status_code == 404


class TestRegions:
    async def test_a_csv_with_a_bad_line_imports_nothing(
        self, api: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        bad = "code,name,province\nfriesland,Friesland,Friesland\nNiet Goed,X,Y\n"
        answer = await api.post(
            "/api/regions/import",
            content=bad.encode(),
            headers={**auth, "Content-Type": "text/csv"},
        )
        assert answer.status_code == 422
        assert "regel 3" in answer.json()["detail"][0]["msg"]
        codes = [region["code"] for region in (await api.get("/api/regions")).json()]
        assert "friesland" not in codes


async def test_the_api_describes_itself_in_openapi(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    assert {"/api/beacons", "/api/events", "/calendar", "/agenda.ics"} <= set(document["paths"])
    beacon_body = document["paths"]["/api/beacons"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/plain"} <= set(beacon_body)
    assert "/organiser/inloggen" not in document["paths"]  # pages stay out of the API
    assert "#/components/schemas/BeaconIn" not in json.dumps(document)  # no dangling reference
