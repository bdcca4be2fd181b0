"""The replay lifecycle, captions and the replay position, as rules and use cases: an
organiser sets or changes an ended event's replay and its captions at any time, each change is
one ``event.replay_published`` (with the address before it) and one audit row, the same values
again are nothing; captions are WebVTT over http(s); a replay beacon says where in the
recording the viewer is, a live one does not."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from sto_events import domain, player
from sto_events.api.schemas import BEACONS, EventCreate, EventUpdate, ReplayIn
from sto_events.domain import Event, IllegalTransition
from sto_events.repository import EventsRepository
from sto_events.repository.memory import EventsState, memory_store
from sto_events.service import EventsService
from stolive_shared.contracts.events import EventEnded, EventReplayPublished, EventUpdated
from stolive_shared.organisers.roles import Organiser
from stolive_shared.store import InMemoryStore
from tests.unit.test_event_rules import NOW, webinar

MemoryStore = InMemoryStore[EventsState, EventsRepository]
PLANNER = Organiser(7, "planner@sto.example", "Planner", "programme")
FIRST = "https://cdn.example/replay/1.m3u8"
SECOND = "https://cdn.example/replay/1-nagemonteerd.m3u8"
CAPTIONS = "https://cdn.example/replay/1.nl.vtt"


def ended(replay_url: str | None = None) -> Event:
    return domain.end(domain.go_live(domain.publish(webinar())), replay_url)


class TestTheRule:
    def test_ending_with_a_replay_says_ended_then_replay_published_each_its_own_revision(
        self,
    ) -> None:
        live = domain.go_live(domain.publish(webinar()))
        over = domain.end(live, FIRST)
        finished, published = over.events
        assert isinstance(finished, EventEnded)
        assert isinstance(published, EventReplayPublished)
        assert (finished.event.revision, published.event.revision) == (
            live.revision + 1,
            live.revision + 2,
        )
        assert published.event.replay_url == FIRST
        assert published.previous_replay_url is None
        assert over.revision == published.event.revision

    def test_ending_without_a_replay_says_only_ended(self) -> None:
        (message,) = ended().events
        assert isinstance(message, EventEnded)

    def test_a_replay_set_later_and_changed_later_still_names_the_one_before(self) -> None:
        over = ended()
        first = domain.publish_replay(over, FIRST)
        (message,) = first.events
        assert isinstance(message, EventReplayPublished)
        assert (message.previous_replay_url, message.event.replay_url) == (None, FIRST)
        assert first.revision == over.revision + 1
        second = domain.publish_replay(first, SECOND)
        (changed,) = second.events
        assert isinstance(changed, EventReplayPublished)
        assert (changed.previous_replay_url, changed.event.replay_url) == (FIRST, SECOND)
        assert second.revision == first.revision + 1

    def test_the_same_address_again_changes_nothing(self) -> None:
        first = domain.publish_replay(ended(), FIRST)
        assert domain.publish_replay(first, FIRST) is first

    def test_captions_made_later_are_one_replay_message_with_the_address_unchanged(
        self,
    ) -> None:
        first = domain.publish_replay(ended(), FIRST)
        captioned = domain.publish_replay(first, FIRST, CAPTIONS)
        (message,) = captioned.events
        assert isinstance(message, EventReplayPublished)
        assert (message.previous_replay_url, message.event.replay_url) == (FIRST, FIRST)
        assert message.event.captions_url == captioned.captions_url == CAPTIONS
        assert captioned.revision == first.revision + 1
        both = domain.publish_replay(captioned, SECOND, CAPTIONS.replace("1.nl", "2.nl"))
        (changed,) = both.events
        assert isinstance(changed, EventReplayPublished)
        assert (changed.previous_replay_url, changed.event.captions_url) == (
            FIRST,
            CAPTIONS.replace("1.nl", "2.nl"),
        )

    def test_captions_not_named_stay_none_removes_them_the_same_again_is_nothing(self) -> None:
        captioned = domain.publish_replay(ended(), FIRST, CAPTIONS)
        moved = domain.publish_replay(captioned, SECOND)
        assert moved.captions_url == CAPTIONS
        assert domain.publish_replay(moved, SECOND, CAPTIONS) is moved
        assert domain.publish_replay(moved, SECOND) is moved
        removed = domain.publish_replay(moved, SECOND, None)
        (message,) = removed.events
        assert isinstance(message, EventReplayPublished)
        assert message.event.captions_url is None

    @pytest.mark.parametrize("status", ["draft", "published", "live", "cancelled"])
    def test_only_an_ended_event_gets_a_replay(self, status: str) -> None:
        event = webinar(status=status)
        with pytest.raises(IllegalTransition) as refused:
            domain.publish_replay(event, FIRST)
        assert "alleen bij een afgelopen evenement" in str(refused.value)
        assert refused.value.status == 409

    def test_captions_travel_in_every_snapshot(self) -> None:
        event = domain.update(
            domain.publish(webinar()), {"captions_url": "https://cdn.example/nl.vtt"}
        )
        (message,) = event.events
        assert isinstance(message, EventUpdated)
        assert message.event.captions_url == "https://cdn.example/nl.vtt"


@pytest.fixture
def store() -> MemoryStore:
    return memory_store()


@pytest.fixture
def service(store: MemoryStore) -> EventsService:
    return EventsService(store, clock=lambda: NOW)


class TestTheUseCase:
    async def test_each_change_is_one_message_and_one_audit_row_in_its_transaction(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        for step in (service.publish, service.go_live):
            await step(draft.id)
        await service.end(draft.id, None)
        before = len(store.state.outbox)
        await service.publish_replay(draft.id, FIRST, PLANNER)
        await service.publish_replay(draft.id, FIRST, PLANNER)  # again: nothing
        changed = await service.publish_replay(draft.id, SECOND, PLANNER)
        new = store.state.outbox[before:]
        assert [m.type for m in new] == ["event.replay_published"] * 2
        assert [m.event.revision for m in new if isinstance(m, EventReplayPublished)] == [
            changed.revision - 1,
            changed.revision,
        ]
        assert [row[:3] for row in store.state.audit] == [
            (PLANNER.account_id, "event_changed", draft.id)
        ] * 2
        assert [row[3] for row in store.state.audit] == [
            {
                "change": "replay_published",
                "replay_url": FIRST,
                "previous_replay_url": None,
                "captions_url": None,
                "previous_captions_url": None,
            },
            {
                "change": "replay_published",
                "replay_url": SECOND,
                "previous_replay_url": FIRST,
                "captions_url": None,
                "previous_captions_url": None,
            },
        ]

    async def test_a_captions_change_is_audited_with_the_captions_before(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar(captions_url="https://cdn.example/live.vtt"))
        for step in (service.publish, service.go_live):
            await step(draft.id)
        await service.end(draft.id, FIRST)
        before = len(store.state.outbox)
        await service.publish_replay(draft.id, FIRST, PLANNER)  # captions as they are: nothing
        await service.publish_replay(draft.id, FIRST, PLANNER, CAPTIONS)
        await service.publish_replay(draft.id, FIRST, PLANNER, CAPTIONS)  # again: nothing
        (message,) = store.state.outbox[before:]
        assert isinstance(message, EventReplayPublished)
        assert (message.previous_replay_url, message.event.captions_url) == (FIRST, CAPTIONS)
        [(_, _, _, detail)] = store.state.audit
        assert detail == {
            "change": "replay_published",
            "replay_url": FIRST,
            "previous_replay_url": FIRST,
            "captions_url": CAPTIONS,
            "previous_captions_url": "https://cdn.example/live.vtt",
        }

    async def test_a_refused_replay_writes_nothing(
        self, service: EventsService, store: MemoryStore
    ) -> None:
        draft = await service.create_event(webinar())
        await service.cancel(draft.id, "ziek")
        before = list(store.state.outbox)
        with pytest.raises(IllegalTransition):
            await service.publish_replay(draft.id, FIRST, PLANNER)
        assert store.state.outbox == before
        assert store.state.audit == []

    async def test_the_replays_are_the_ended_broadcasts_with_one_newest_first(
        self, service: EventsService
    ) -> None:
        made = []
        for days in (3, 5, 4):
            start = NOW + timedelta(days=days)
            made.append(
                await service.create_event(
                    webinar(starts_at=start, ends_at=start + timedelta(hours=1))
                )
            )
        for event in made:
            await service.publish(event.id)
            await service.go_live(event.id)
        await service.end(made[0].id, FIRST)
        await service.end(made[1].id, None)
        await service.end(made[2].id, None)
        await service.publish_replay(made[2].id, SECOND, PLANNER)
        replays = await service.replays()
        assert [e.id for e in replays] == [made[2].id, made[0].id]


class TestTheAddresses:
    @pytest.mark.parametrize("address", ["rtmp://cdn.example/nl.vtt", "ftp://x/nl.vtt", "nl.vtt"])
    def test_captions_must_be_http_and_are_refused_in_dutch(self, address: str) -> None:
        with pytest.raises(ValidationError) as refused:
            EventUpdate.model_validate({"captions_url": address})
        (problem,) = refused.value.errors()
        assert problem["loc"] == ("captions_url",)
        assert "https://" in problem["msg"]

    def test_a_new_event_keeps_its_captions(self) -> None:
        event = EventCreate.model_validate(
            {
                "kind": "webinar",
                "title": "Met ondertiteling",
                "starts_at": datetime(2030, 1, 1, 15, tzinfo=UTC),
                "ends_at": datetime(2030, 1, 1, 16, tzinfo=UTC),
                "captions_url": "http://127.0.0.1:9/nl.vtt",
            }
        ).to_event()
        assert event.captions_url == "http://127.0.0.1:9/nl.vtt"

    def test_a_replay_address_is_required_and_http(self) -> None:
        with pytest.raises(ValidationError):
            ReplayIn.model_validate({})
        with pytest.raises(ValidationError) as refused:
            ReplayIn.model_validate({"replay_url": "javascript:alert(1)"})
        assert refused.value.errors()[0]["msg"] == (
            "Het adres van de uitzending begint met https:// of http://."
        )

    def test_replay_captions_left_out_stay_null_removes_them_and_they_must_be_http(
        self,
    ) -> None:
        assert ReplayIn.model_validate({"replay_url": FIRST}).captions() is ...
        named = ReplayIn.model_validate({"replay_url": FIRST, "captions_url": CAPTIONS})
        assert named.captions() == CAPTIONS
        removed = ReplayIn.model_validate({"replay_url": FIRST, "captions_url": None})
        assert removed.captions() is None
        with pytest.raises(ValidationError) as refused:
            ReplayIn.model_validate({"replay_url": FIRST, "captions_url": "rtmp://x/nl.vtt"})
        (problem,) = refused.value.errors()
        assert problem["loc"] == ("captions_url",)
        assert problem["msg"] == (
            "Het adres van de ondertiteling (WebVTT) begint met https:// of http://."
        )

    def test_only_our_own_video_gets_a_track_and_the_csp_names_its_origin(self) -> None:
        hls = player.stream_source("https://cdn.example/live.m3u8")
        vtt = "http://127.0.0.1:8123/nl.vtt"
        assert player.captions_for(hls, vtt) == vtt
        assert player.captions_for(hls, None) == ""
        assert player.captions_for(player.stream_source("https://youtu.be/dQw4w9WgXcQ"), vtt) == ""
        assert player.captions_sources(vtt) == {"media-src": ("http://127.0.0.1:8123",)}


def beacon(**fields: object) -> bytes:
    body = {
        "event_id": str(uuid.uuid4()),
        "viewer_id": "anon-1",
        "action": "heartbeat",
        "mode": "replay",
        "client_ts": "2026-12-03T12:00:00+00:00",
        **fields,
    }
    return json.dumps(body).encode()


class TestThePosition:
    @pytest.mark.parametrize("seconds", [0, 12.5, 86400])
    def test_a_replay_beacon_says_where_in_the_recording(self, seconds: float) -> None:
        parsed = BEACONS.validate_json(beacon(position_s=seconds))
        assert not isinstance(parsed, list)
        assert parsed.to_domain().position_s == seconds

    @pytest.mark.parametrize("seconds", [-1, 86400.5, "twaalf", [3]])
    def test_a_position_below_zero_over_a_day_or_not_a_number_is_refused_in_dutch(
        self, seconds: object
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            BEACONS.validate_json(beacon(position_s=seconds))
        assert "De positie in de opname is een getal in seconden" in str(refused.value)

    def test_a_live_beacon_has_no_position(self) -> None:
        with pytest.raises(ValidationError) as refused:
            BEACONS.validate_json(beacon(mode="live", position_s=3))
        assert "Alleen een terugblik heeft een positie" in str(refused.value)
        parsed = BEACONS.validate_json(beacon(mode="live"))
        assert not isinstance(parsed, list)
        assert parsed.position_s is None
