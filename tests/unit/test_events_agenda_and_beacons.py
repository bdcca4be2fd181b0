"""The events service's rules for series, regions, the agenda and viewer beacons."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from sto_events import domain
from sto_events.adapters.beacons import EventStatusCache
from sto_events.adapters.calendar_feed import build_feed
from sto_events.api.watch import heartbeat_seconds
from sto_events.domain import (
    Beacon,
    BeaconRefused,
    DuplicateSeriesNumber,
    Event,
    EventRuleViolation,
    RegionImportError,
    ViewerThrottle,
    check_beacon,
    parse_regions_csv,
)
from sto_events.regions import DEMO_REGIONS_CSV
from stolive_shared.contracts.events import EventStatus

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "id": uuid.UUID("5b0e6a2e-1111-4c0e-9c57-2f1a3b4c5d6e"),
        "kind": "webinar",
        "title": "STO LIVE #26",
        "starts_at": NOW + timedelta(days=7),
        "ends_at": NOW + timedelta(days=7, minutes=30),
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


class TestSeries:
    def test_a_webinar_without_a_series_is_the_next_sto_live_broadcast(self) -> None:
        numbered = domain.in_series(event(), taken_numbers={24, 25})
        assert (numbered.series_code, numbered.series_number) == ("sto-live", 26)

    def test_the_first_broadcast_of_a_series_is_number_one(self) -> None:
        assert domain.in_series(event(series_code="techniek-talks"), set()).series_number == 1

    def test_a_number_already_taken_is_refused(self) -> None:
        with pytest.raises(DuplicateSeriesNumber, match="#25"):
            domain.in_series(event(series_number=25), taken_numbers={25})

    def test_an_unused_number_may_be_chosen_out_of_order(self) -> None:
        assert domain.in_series(event(series_number=3), taken_numbers={25}).series_number == 3

    def test_meetings_belong_to_no_series(self) -> None:
        meeting = event(kind="regional_meeting", region_codes=("drenthe",), capacity=40)
        assert domain.in_series(meeting, {1}) is meeting
        with pytest.raises(EventRuleViolation) as refused:
            domain.validate_new_event(
                event(kind="national_day", capacity=600, series_code="sto-live"), NOW
            )
        assert refused.value.field == "series_code"


class TestYear:
    def test_a_year_runs_from_midnight_to_midnight_in_amsterdam(self) -> None:
        start, end = domain.year_bounds(2026)
        assert start == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
        assert end == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)

    def test_a_year_far_off_is_refused(self) -> None:
        with pytest.raises(EventRuleViolation):
            domain.year_bounds(1900)


class TestRegionsCsv:
    def test_comma_separated_with_a_header(self) -> None:
        regions = parse_regions_csv(
            "code,name,province,supra_region\ndrenthe,Drenthe,Drenthe,Noord-Nederland\n"
        )
        assert regions == [domain.Region("drenthe", "Drenthe", "Drenthe", "Noord-Nederland")]

    def test_a_spreadsheet_export_with_semicolons_and_a_byte_order_mark(self) -> None:
        text = "\ufeffCode;Name;Province\r\nApeldoorn-eo;Apeldoorn e.o.;Gelderland\r\n;;\r\n"
        [region] = parse_regions_csv(text)
        assert (region.code, region.name, region.supra_region) == (
            "apeldoorn-eo",
            "Apeldoorn e.o.",
            None,
        )

    @pytest.mark.parametrize(
        ("text", "complaint"),
        [
            ("naam,provincie\nDrenthe,Drenthe\n", "kolom ontbreekt"),
            ("code,name\ndrenthe,Drenthe\nmet spatie,X y\n", "regel 3"),
            ("code,name\ndrenthe,Drenthe\ndrenthe,Drenthe\n", "twee keer"),
            ("code,name\ndrenthe,\n", "naam"),
            ("code,name\n", "geen regio"),
        ],
        ids=["no-code-column", "bad-code", "duplicate", "no-name", "empty"],
    )
    def test_a_bad_file_is_refused_whole_with_the_reason(self, text: str, complaint: str) -> None:
        with pytest.raises(RegionImportError, match=complaint):
            parse_regions_csv(text)

    def test_the_shipped_demo_file_has_the_regions_the_newsletters_name(self) -> None:
        names = {r.name for r in parse_regions_csv(DEMO_REGIONS_CSV.read_text("utf-8-sig"))}
        assert {
            "Rotterdam Zuid",
            "West-Friesland",
            "Midden-Brabant",
            "Apeldoorn e.o.",
            "Groningen",
            "Friesland",
            "Drenthe",
        } <= names


def beacon(action: str = "heartbeat", mode: str = "live", viewer: str = "eva") -> Beacon:
    return Beacon(
        event_id=uuid.UUID("5b0e6a2e-1111-4c0e-9c57-2f1a3b4c5d6e"),
        viewer_id=viewer,
        action=action,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        client_ts=NOW,
    )


class TestBeaconRules:
    @pytest.mark.parametrize(
        ("status", "mode", "answer"),
        [
            (None, "live", 404),
            ("draft", "live", 404),
            ("cancelled", "replay", 404),
            ("published", "live", 409),
            ("ended", "live", 409),
            ("published", "replay", 409),
            ("live", "live", None),
            ("live", "replay", None),
            ("ended", "replay", None),
        ],
    )
    def test_who_may_watch_what(self, status: str | None, mode: str, answer: int | None) -> None:
        if answer is None:
            check_beacon(beacon(mode=mode), status)  # type: ignore[arg-type]
            return
        with pytest.raises(BeaconRefused) as refused:
            check_beacon(beacon(mode=mode), status)  # type: ignore[arg-type]
        assert refused.value.status == answer

    def test_a_live_viewer_may_still_leave_after_the_broadcast_ended(self) -> None:
        check_beacon(beacon("leave"), "ended")
        with pytest.raises(BeaconRefused):
            check_beacon(beacon("leave"), "published")

    def test_a_client_clock_more_than_a_day_off_is_not_believed(self) -> None:
        assert domain.beacon_clock_skew_ok(beacon(), NOW + timedelta(hours=23))
        assert not domain.beacon_clock_skew_ok(beacon(), NOW + timedelta(hours=25))


class TestViewerThrottle:
    def test_one_beacon_per_viewer_per_five_seconds(self) -> None:
        throttle = ViewerThrottle(5.0)
        assert throttle.allow(beacon("join"), now=100.0)
        assert not throttle.allow(beacon("heartbeat"), now=104.9)
        assert throttle.allow(beacon("heartbeat"), now=105.0)

    def test_a_refused_beacon_does_not_push_the_next_one_back(self) -> None:
        throttle = ViewerThrottle(5.0)
        throttle.allow(beacon(), now=100.0)
        assert not throttle.allow(beacon(), now=103.0)
        assert throttle.allow(beacon(), now=105.0)

    def test_viewers_are_throttled_each_on_their_own(self) -> None:
        throttle = ViewerThrottle(5.0)
        assert throttle.allow(beacon(viewer="eva"), now=100.0)
        assert throttle.allow(beacon(viewer="sam"), now=100.1)

    def test_leaving_always_passes_and_a_reload_may_join_again(self) -> None:
        throttle = ViewerThrottle(5.0)
        throttle.allow(beacon("join"), now=100.0)
        assert throttle.allow(beacon("leave"), now=100.5)
        assert throttle.allow(beacon("join"), now=101.0)

    def test_only_viewers_heard_from_recently_are_remembered(self) -> None:
        throttle = ViewerThrottle(5.0)
        throttle.allow(beacon(viewer="eva"), now=100.0)
        throttle.allow(beacon(viewer="sam"), now=103.0)
        assert throttle.forget_older_than(now=106.0) == 1
        assert len(throttle) == 1


class TestWatchPageHeartbeat:
    def test_thirty_seconds_unless_asked_otherwise(self) -> None:
        assert heartbeat_seconds(None, 30, 5.0) == 30
        assert heartbeat_seconds("10", 30, 5.0) == 10

    @pytest.mark.parametrize(("asked", "given"), [("1", 5), ("9999", 300), ("snel", 30)])
    def test_never_faster_than_the_throttle_nor_slower_than_five_minutes(
        self, asked: str, given: int
    ) -> None:
        assert heartbeat_seconds(asked, 30, 5.0) == given


class TestCalendarFeed:
    def test_a_feed_a_calendar_program_reads(self) -> None:
        published = event(status="published", revision=3, venue=None)
        body = build_feed(
            [published],
            name="STO Live: Drenthe",
            description="Bijeenkomsten in Drenthe",
            now=NOW,
            page_url="https://sto.example/events/regio/drenthe",
            link_for={str(published.id): "https://sto.example/events/watch/x"},
        )
        calendar = icalendar.Calendar.from_ical(body)
        assert str(calendar["X-WR-TIMEZONE"]) == "Europe/Amsterdam"
        assert str(calendar["X-WR-CALNAME"]) == "STO Live: Drenthe"
        [entry] = calendar.walk("VEVENT")
        assert (
            str(entry["UID"])
            == "5b0e6a2e-1111-4c0e-9c57-2f1a3b4c5d6e@stolive.sterktechniekonderwijs.nl"
        )
        assert entry.decoded("SEQUENCE") == 3
        assert entry.decoded("DTSTART") == published.starts_at
        assert entry.decoded("DTEND") == published.ends_at
        assert str(entry["LOCATION"]) == "Online"
        assert str(entry["URL"]) == "https://sto.example/events/watch/x"
        assert str(entry["STATUS"]) == "CONFIRMED"


class TestEventStatusCache:
    async def test_a_change_noted_while_a_reload_runs_is_not_undone_by_it(self) -> None:
        """The reload's query may have read the row just before this process changed it."""
        published = event(status="published")
        query_running, query_may_finish = asyncio.Event(), asyncio.Event()

        async def stale_load() -> dict[uuid.UUID, EventStatus]:
            query_running.set()
            await query_may_finish.wait()
            return {published.id: "published"}

        cache = EventStatusCache(stale_load)
        reload = asyncio.create_task(cache.refresh())
        await query_running.wait()
        cache.note(domain.go_live(published))
        assert cache.status(published.id) == "live"
        query_may_finish.set()
        await reload
        assert cache.status(published.id) == "live"

    async def test_a_reload_after_the_change_is_believed(self) -> None:
        published = event(status="published")
        cache = EventStatusCache(lambda: _loaded({published.id: "cancelled"}))
        cache.note(domain.go_live(published))
        await asyncio.sleep(0.01)
        await cache.refresh()
        assert cache.status(published.id) == "cancelled"
        assert cache.status(uuid.uuid4()) is None


async def _loaded(statuses: dict[uuid.UUID, EventStatus]) -> dict[uuid.UUID, EventStatus]:
    return dict(statuses)
