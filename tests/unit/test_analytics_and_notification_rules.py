"""Analytics counts by set, and the notifications service's choice of email and retry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sto_analytics.domain import RegistrationTally, tally, with_status
from sto_notifications import domain as notifications
from stolive_shared.contracts.registrations import Attendee, RegistrationView


def test_a_replayed_registration_is_counted_once() -> None:
    statuses = with_status({}, "r1", "confirmed")
    statuses = with_status(statuses, "r1", "confirmed")
    statuses = with_status(statuses, "r2", "waitlisted")
    assert tally(statuses) == RegistrationTally(confirmed=1, waitlisted=1, cancelled=0)


def test_the_latest_status_of_a_registration_counts() -> None:
    statuses = with_status(with_status({}, "r1", "confirmed"), "r1", "cancelled")
    assert tally(statuses) == RegistrationTally(confirmed=0, waitlisted=0, cancelled=1)


def view(revision: int = 3) -> RegistrationView:
    starts = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    return RegistrationView(
        registration_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        status="confirmed",
        attendee=Attendee(name="Anna", email="anna@school.nl"),
        viewer_id="v_1",
        manage_url="http://127.0.0.1:8000/registrations/r/x",
        event_title="STO LIVE #26",
        event_starts_at=starts,
        event_ends_at=starts + timedelta(minutes=30),
        event_revision=revision,
    )


def test_one_email_per_registration_kind_and_event_revision() -> None:
    registration = view()
    first = notifications.registration_email("registration.confirmed", registration)
    again = notifications.registration_email("registration.confirmed", registration)
    assert first is not None
    assert again is not None
    assert first.dedup_key == again.dedup_key
    later = notifications.registration_email("registration.confirmed", view(revision=4))
    assert later is not None
    assert later.dedup_key != first.dedup_key


def test_messages_without_an_email_are_ignored() -> None:
    assert notifications.registration_email("registration.exploded", view()) is None


def test_only_5xx_answers_are_permanent() -> None:
    assert notifications.is_permanent(550)
    assert not notifications.is_permanent(451)
    assert not notifications.is_permanent(None)


def test_retries_back_off_up_to_half_an_hour() -> None:
    assert notifications.retry_delay(1) == timedelta(seconds=5)
    assert notifications.retry_delay(2) == timedelta(seconds=10)
    assert notifications.retry_delay(30) == timedelta(minutes=30)
