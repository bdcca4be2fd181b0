"""The events service's rules: lifecycle transitions and Amsterdam time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sto_events import domain
from sto_events.domain import Event, EventRuleViolation, IllegalTransition, InvalidLocalTime
from stolive_shared.contracts.events import EventCancelled, EventPublished, EventRescheduled

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def webinar(**changes: object) -> Event:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "kind": "webinar",
        "title": "STO LIVE #26",
        "starts_at": NOW + timedelta(days=7),
        "ends_at": NOW + timedelta(days=7, minutes=30),
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


class TestAmsterdamTime:
    def test_a_naive_time_is_amsterdam_wall_clock(self) -> None:
        assert domain.to_utc(datetime(2026, 11, 24, 15, 30), "starts_at") == datetime(
            2026, 11, 24, 14, 30, tzinfo=UTC
        )

    def test_summer_time_is_two_hours_ahead(self) -> None:
        assert domain.to_utc(datetime(2026, 6, 2, 15, 30), "starts_at").hour == 13

    def test_a_time_in_the_spring_forward_gap_does_not_exist(self) -> None:
        with pytest.raises(InvalidLocalTime, match="bestaat niet") as refused:
            domain.to_utc(datetime(2026, 3, 29, 2, 30), "starts_at")
        assert refused.value.field == "starts_at"

    def test_a_time_in_the_autumn_overlap_is_ambiguous_without_an_offset(self) -> None:
        with pytest.raises(InvalidLocalTime, match="twee keer"):
            domain.to_utc(datetime(2026, 10, 25, 2, 30), "starts_at")

    @pytest.mark.parametrize(("offset_hours", "utc_hour"), [(2, 0), (1, 1)])
    def test_an_explicit_offset_settles_the_autumn_overlap(
        self, offset_hours: int, utc_hour: int
    ) -> None:
        from datetime import timezone

        moment = datetime(2026, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=offset_hours)))
        assert domain.to_utc(moment, "starts_at") == datetime(
            2026, 10, 25, utc_hour, 30, tzinfo=UTC
        )


class TestNewEvents:
    def test_the_end_must_follow_the_start(self) -> None:
        with pytest.raises(EventRuleViolation) as refused:
            domain.validate_new_event(webinar(ends_at=NOW + timedelta(days=7)), NOW)
        assert refused.value.field == "ends_at"

    def test_a_new_event_starts_in_the_future(self) -> None:
        past = webinar(starts_at=NOW - timedelta(hours=1), ends_at=NOW)
        with pytest.raises(EventRuleViolation, match="toekomst"):
            domain.validate_new_event(past, NOW)

    def test_a_regional_meeting_needs_a_region_and_a_capacity(self) -> None:
        with pytest.raises(EventRuleViolation) as refused:
            domain.validate_new_event(webinar(kind="regional_meeting", capacity=40), NOW)
        assert refused.value.field == "region_codes"
        with pytest.raises(EventRuleViolation) as refused:
            domain.validate_new_event(
                webinar(kind="regional_meeting", region_codes=("drenthe",)), NOW
            )
        assert refused.value.field == "capacity"

    def test_a_webinar_may_have_unlimited_capacity(self) -> None:
        domain.validate_new_event(webinar(capacity=None), NOW)


class TestLifecycle:
    def test_publishing_a_draft_raises_the_revision_and_records_one_message(self) -> None:
        published = domain.publish(webinar())
        assert published.status == "published"
        assert published.revision == 2
        [message] = published.events
        assert isinstance(message, EventPublished)
        assert message.event.revision == 2
        assert message.partition_key() == str(published.id)

    def test_a_draft_cannot_end(self) -> None:
        with pytest.raises(IllegalTransition):
            domain.end(webinar())

    def test_an_ended_event_cannot_be_rescheduled(self) -> None:
        ended = domain.end(domain.go_live(domain.publish(webinar())))
        with pytest.raises(IllegalTransition):
            domain.reschedule(ended, NOW + timedelta(days=8), NOW + timedelta(days=8, hours=1), NOW)

    def test_rescheduling_a_published_event_tells_where_it_was(self) -> None:
        event = domain.publish(webinar())
        moved = domain.reschedule(
            event, NOW + timedelta(days=9), NOW + timedelta(days=9, hours=1), NOW
        )
        [message] = moved.events
        assert isinstance(message, EventRescheduled)
        assert message.previous_starts_at == event.starts_at
        assert moved.revision == event.revision + 1

    def test_cancelling_keeps_the_reason(self) -> None:
        cancelled = domain.cancel(domain.publish(webinar()), "spreker ziek")
        [message] = cancelled.events
        assert isinstance(message, EventCancelled)
        assert message.reason == "spreker ziek"
        with pytest.raises(IllegalTransition):
            domain.publish(cancelled)

    def test_an_update_without_changes_changes_nothing(self) -> None:
        event = domain.publish(webinar(capacity=100))
        assert domain.update(event, {"capacity": 100}) is event
