"""The watch page's rules (``sto_events.player``): what it plays, which state it shows, and
when its beacons go. The page's script follows these tables and decides nothing of its own, so
they are its specification; the YouTube and Vimeo mappings are tested only here, because
neither service can be reached from the machines the tests run on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import get_args

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from sto_events.api import static
from sto_events.api.schemas import Ending, EventCreate, EventUpdate
from sto_events.api.watch import HLS_JS
from sto_events.player import (
    BEACON_RULES,
    HEARTBEAT_STATES,
    VIMEO_EVENTS,
    YOUTUBE_STATES,
    PlayerEvent,
    SessionState,
    countdown_nl,
    script_rules,
    sign_up,
    stream_source,
    watch_state,
)

SITE = "https://live.sto.example"


def run(*events: PlayerEvent, start: SessionState = "idle") -> tuple[list[str], SessionState]:
    """The beacons a sequence of player events sends, and the session state it ends in."""
    state = start
    sent: list[str] = []
    for event in events:
        step = BEACON_RULES[state].get(event)
        if step is None:
            continue
        beacon, state = step
        if beacon:
            sent.append(beacon)
    return sent, state


class TestBeaconsFollowThePlayer:
    def test_the_first_frame_joins_and_a_pause_leaves(self) -> None:
        assert run("playing") == (["join"], "watching")
        assert run("playing", "paused") == (["join", "leave"], "idle")
        assert run("playing", "paused", "playing") == (["join", "leave", "join"], "watching")

    def test_nothing_is_sent_before_the_media_plays(self) -> None:
        # A stream that does not answer fails, is tried again, fails: no beacon at all.
        assert run("failed", "buffering", "failed", "paused", "gone") == ([], "idle")

    @pytest.mark.parametrize("ending", ["ended", "failed", "gone"])
    def test_the_end_a_failure_or_leaving_the_page_sends_one_leave(
        self, ending: PlayerEvent
    ) -> None:
        assert run("playing", ending, "paused", ending) == (["join", "leave"], "idle")

    def test_heartbeats_go_only_while_watching_or_briefly_stalled(self) -> None:
        assert set(HEARTBEAT_STATES) == {"watching", "stalled"}
        sequences: list[tuple[PlayerEvent, ...]] = [
            (),
            ("playing", "paused"),
            ("playing", "buffering", "stall_limit"),
        ]
        for events in sequences:
            assert run(*events)[1] not in HEARTBEAT_STATES

    def test_a_short_stall_keeps_the_session_a_long_one_ends_it(self) -> None:
        assert run("playing", "buffering", "playing") == (["join"], "watching")
        assert run("playing", "buffering", "stall_limit") == (["join", "leave"], "stuck")
        assert run("playing", "buffering", "stall_limit", "playing") == (
            ["join", "leave", "join"],
            "watching",
        )
        # Stuck, then paused: the session is already over, so nothing more is said.
        assert run("playing", "buffering", "stall_limit", "paused") == (["join", "leave"], "idle")

    def test_a_hidden_silent_tab_stops_counting_until_it_is_seen_or_heard(self) -> None:
        assert run("playing", "unseen") == (["join", "leave"], "unseen")
        assert run("playing", "unseen", "playing", "buffering") == (["join", "leave"], "unseen")
        assert run("playing", "unseen", "seen") == (["join", "leave", "join"], "watching")
        assert run("playing", "unseen", "paused", "seen") == (["join", "leave"], "idle")
        # Seen while watching (a tab shown again that was never silent) changes nothing.
        assert run("playing", "seen") == (["join"], "watching")

    def test_when_the_broadcast_is_over_the_page_says_goodbye_once_and_then_nothing(self) -> None:
        assert run("playing", "over", "playing", "paused") == (["join", "leave"], "closed")
        assert run("over", "playing") == ([], "closed")
        assert run("playing", "refused", "playing") == (["join"], "closed")

    def test_every_state_and_event_in_the_table_is_a_known_one(self) -> None:
        states, events = set(get_args(SessionState)), set(get_args(PlayerEvent))
        assert set(BEACON_RULES) == states
        for steps in BEACON_RULES.values():
            assert set(steps) <= events
            assert {beacon for beacon, _ in steps.values()} <= {"join", "leave", None}
            assert {state for _, state in steps.values()} <= states


class TestEmbeddedPlayers:
    def test_youtube_states_map_to_player_events(self) -> None:
        # onStateChange: -1 unstarted, 0 ended, 1 playing, 2 paused, 3 buffering, 5 cued.
        assert YOUTUBE_STATES == {
            "0": "ended",
            "1": "playing",
            "2": "paused",
            "3": "buffering",
        }
        assert "-1" not in YOUTUBE_STATES
        assert "5" not in YOUTUBE_STATES

    def test_a_youtube_session_as_the_api_reports_it(self) -> None:
        reported = ["-1", "3", "1", "3", "1", "2", "1", "0"]
        events = [YOUTUBE_STATES[s] for s in reported if s in YOUTUBE_STATES]
        assert run(*events) == (["join", "leave", "join", "leave"], "idle")

    def test_vimeo_events_map_to_player_events(self) -> None:
        assert VIMEO_EVENTS == {
            "playing": "playing",
            "pause": "paused",
            "ended": "ended",
            "bufferstart": "buffering",
            "bufferend": "resumed",
            "error": "failed",
        }

    def test_vimeo_bufferend_after_a_preload_does_not_join(self) -> None:
        assert run(VIMEO_EVENTS["bufferstart"], VIMEO_EVENTS["bufferend"]) == ([], "idle")
        stalled_long = ["playing", "bufferstart"]
        events = [VIMEO_EVENTS[name] for name in stalled_long]
        assert run(*events, "stall_limit", VIMEO_EVENTS["bufferend"]) == (
            ["join", "leave", "join"],
            "watching",
        )

    def test_the_page_gets_every_table_as_json(self) -> None:
        rules = script_rules()
        assert rules["rules"] is BEACON_RULES
        assert rules["youtube"] is YOUTUBE_STATES
        assert rules["vimeo"] is VIMEO_EVENTS
        assert rules["stall_limit_s"] == 20


class TestWhatPlays:
    @pytest.mark.parametrize(
        "address",
        [
            "https://cdn.sto.example/live/index.m3u8",
            "http://127.0.0.1:8080/stream/out.M3U8?token=abc",
        ],
    )
    def test_hls_plays_in_the_page(self, address: str) -> None:
        source = stream_source(address, SITE)
        assert (source.kind, source.url) == ("hls", address)

    @pytest.mark.parametrize(
        "address",
        [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=10",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ?si=x",
            "https://m.youtube.com/embed/dQw4w9WgXcQ",
        ],
    )
    def test_youtube_is_embedded_without_cookies_with_its_api_on(self, address: str) -> None:
        source = stream_source(address, SITE)
        assert source.kind == "youtube"
        assert source.url == (
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?enablejsapi=1&rel=0"
            "&playsinline=1&origin=https%3A%2F%2Flive.sto.example"
        )
        assert source.address == address

    @pytest.mark.parametrize(
        ("address", "embed"),
        [
            ("https://vimeo.com/76979871", "https://player.vimeo.com/video/76979871?dnt=1"),
            (
                "https://vimeo.com/76979871/0a1b2c3d4e",
                "https://player.vimeo.com/video/76979871?dnt=1&h=0a1b2c3d4e",
            ),
            (
                "https://player.vimeo.com/video/76979871?h=0a1b",
                "https://player.vimeo.com/video/76979871?dnt=1&h=0a1b",
            ),
            ("https://vimeo.com/event/4321", "https://vimeo.com/event/4321/embed?dnt=1"),
        ],
    )
    def test_vimeo_is_embedded_without_tracking(self, address: str, embed: str) -> None:
        assert stream_source(address, SITE).url == embed

    @pytest.mark.parametrize(
        "address",
        [
            "https://teams.microsoft.com/l/meetup-join/abc",
            "https://www.youtube.com/@sterktechniekonderwijs",
            "https://vimeo.com/sterktechniek",
        ],
    )
    def test_any_other_web_address_is_a_link(self, address: str) -> None:
        assert stream_source(address, SITE).kind == "link"

    @pytest.mark.parametrize(
        "address", [None, "", "rtmp://x.example/live", "javascript:alert(1)", "https://"]
    )
    def test_nothing_else_plays(self, address: str | None) -> None:
        assert stream_source(address, SITE).kind == "none"

    def test_the_page_may_reach_what_it_plays_and_nothing_more(self) -> None:
        assert stream_source("http://127.0.0.1:8080/a.m3u8").page_sources() == {
            "media-src": ("http://127.0.0.1:8080",),
            "connect-src": ("http://127.0.0.1:8080",),
        }
        # https segments may come from a CDN: hls.js may fetch what <video> may load.
        assert stream_source("https://cdn.example/a.m3u8").page_sources() == {
            "media-src": (),
            "connect-src": ("https:", "https://cdn.example"),
        }
        youtube = stream_source("https://youtu.be/dQw4w9WgXcQ")
        assert youtube.page_sources() == {"frame-src": ("https://www.youtube-nocookie.com",)}
        assert stream_source("https://teams.example/x").page_sources() == {}


class TestTheRefusedAddresses:
    @pytest.mark.parametrize(
        "address", ["rtmp://stream.example/live", "javascript:alert(1)", "file:///etc/passwd"]
    )
    def test_a_stream_or_replay_address_that_is_not_http_is_refused_in_dutch(
        self, address: str
    ) -> None:
        schemas: list[tuple[type[BaseModel], str]] = [
            (EventUpdate, "stream_url"),
            (EventUpdate, "replay_url"),
            (Ending, "replay_url"),
        ]
        for schema, field in schemas:
            with pytest.raises(ValidationError) as refused:
                schema.model_validate({field: address})
            (problem,) = refused.value.errors()
            assert problem["loc"] == (field,)
            assert problem["msg"] == "Het adres van de uitzending begint met https:// of http://."

    def test_not_an_address_at_all(self) -> None:
        now = datetime.now(UTC)
        with pytest.raises(ValidationError) as refused:
            EventCreate.model_validate(
                {
                    "kind": "webinar",
                    "title": "Zonder adres",
                    "starts_at": now,
                    "ends_at": now,
                    "stream_url": "zie de mail",
                }
            )
        (problem,) = refused.value.errors()
        assert problem["msg"] == "Dit is geen geldig webadres (begin met https://)."


class TestThePageState:
    def test_one_page_for_every_state(self) -> None:
        assert watch_state("published", None) == "upcoming"
        assert watch_state("live", "https://x.example/r.m3u8") == "live"
        assert watch_state("ended", None) == "replay_pending"
        assert watch_state("ended", "https://x.example/r.m3u8") == "replay"
        assert watch_state("cancelled", None) == "cancelled"

    def test_the_sign_up_button_follows_the_registration_window(self) -> None:
        now = datetime(2026, 3, 2, 12, tzinfo=UTC)
        ends = now + timedelta(days=3)
        assert sign_up("published", ends, None, None, now) == "open"
        assert sign_up("published", ends, now + timedelta(hours=1), None, now) == "not_yet"
        assert sign_up("published", ends, None, now, now) == "closed"
        assert sign_up("live", ends, None, None, now) == "open"
        assert sign_up("ended", ends, None, None, now) == "closed"
        assert sign_up("published", now, None, None, now) == "closed"

    @pytest.mark.parametrize(
        ("seconds", "said"),
        [
            (30, "De uitzending begint zo."),
            (61, "Nog 2 minuten"),
            (119 * 60, "Nog 1 uur en 59 minuten"),
            (3600, "Nog 1 uur"),
            (26 * 3600 + 60, "Nog 1 dag en 2 uur"),
            (3 * 86400 + 30 * 60, "Nog 3 dagen"),
            (60 * 60 + 60, "Nog 1 uur en 1 minuut"),
        ],
    )
    def test_the_countdown_in_dutch(self, seconds: int, said: str) -> None:
        assert countdown_nl(seconds) == said


class TestThePlayersFiles:
    """``/static/…``: the player script and the vendored hls.js, with its licence."""

    @pytest.fixture
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        app = FastAPI()
        app.include_router(static.router)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sto") as client:
            yield client

    async def test_a_fingerprinted_address_is_cached_for_a_year_as_javascript(
        self, client: httpx.AsyncClient
    ) -> None:
        name = f"{HLS_JS}/hls.min.js"
        answer = await client.get(f"/static/{name}", params={"v": static.fingerprint(name)})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.content.startswith(b"!function")

    async def test_an_old_or_bare_address_is_checked_again_each_time(
        self, client: httpx.AsyncClient
    ) -> None:
        for query in ("", "?v=000000000000"):
            answer = await client.get(f"/static/player/watch.js{query}")
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == "no-cache"

    async def test_the_licence_is_kept_beside_the_player(self, client: httpx.AsyncClient) -> None:
        answer = await client.get(f"/static/{HLS_JS}/LICENSE")
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert "Apache License, Version 2.0" in answer.text

    @pytest.mark.parametrize(
        "path", ["../player.py", "..%2Fplayer.py", "player/nope.js", "player", "../api/watch.py"]
    )
    async def test_nothing_else_is_served(self, client: httpx.AsyncClient, path: str) -> None:
        assert (await client.get(f"/static/{path}")).status_code == 404
