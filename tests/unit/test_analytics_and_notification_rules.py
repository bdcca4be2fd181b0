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


ANNA = notifications.Addressee("Anna", "anna@school.nl", "https://sto.test/registrations/r/x")


def test_one_email_per_registration_kind_and_event_revision() -> None:
    registration = view()
    first = notifications.registration_email("registration_confirmed", registration, ANNA)
    again = notifications.registration_email("registration_confirmed", registration, ANNA)
    assert first.dedup_key == again.dedup_key
    later = notifications.registration_email("registration_confirmed", view(revision=4), ANNA)
    assert later.dedup_key != first.dedup_key


class TestWhatARegistrationChangeMeans:
    def test_a_seat_brings_the_confirmation_the_invitation_and_the_reminders(self) -> None:
        for change in ("confirmed", "promoted"):
            reaction = notifications.registration_reaction(change)
            assert reaction.calendar == "REQUEST"
            assert reaction.reminders == "plan"
        assert notifications.registration_reaction("promoted").email == "registration_promoted"

    def test_the_waiting_list_brings_an_email_alone(self) -> None:
        reaction = notifications.registration_reaction("waitlisted")
        assert reaction == notifications.Reaction("registration_waitlisted")

    def test_cancelling_a_seat_withdraws_the_invitation_the_person_holds(self) -> None:
        reaction = notifications.registration_reaction(
            "cancelled", previous_status="confirmed", invited=True
        )
        assert reaction == notifications.Reaction("registration_cancelled", "CANCEL", "drop")

    def test_leaving_the_waiting_list_withdraws_no_invitation(self) -> None:
        reaction = notifications.registration_reaction(
            "cancelled", previous_status="waitlisted", invited=False
        )
        assert reaction == notifications.Reaction("registration_cancelled", None, "drop")

    def test_after_the_event_was_cancelled_a_cancellation_is_the_events_own_notice(
        self,
    ) -> None:
        """The same e-mail under the same key as the event's notice: sent once, by whichever
        of the two messages comes first (see ``test_notifications_notices``)."""
        reaction = notifications.registration_reaction(
            "cancelled", previous_status="confirmed", event_cancelled=True, invited=True
        )
        assert reaction == notifications.Reaction("event_cancelled", "CANCEL", "drop")


class TestWhatAnEventChangeMeans:
    def test_a_cancelled_event_withdraws_invitations_only_where_we_sent_one(self) -> None:
        seated = notifications.event_reaction("cancelled", status="confirmed", invited=True)
        waiting = notifications.event_reaction("cancelled", status="waitlisted", invited=False)
        assert seated == notifications.Reaction("event_cancelled", "CANCEL", "drop")
        assert waiting == notifications.Reaction("event_cancelled", None, "drop")

    def test_a_move_updates_the_invitation_and_reminders_of_the_seated(self) -> None:
        seated = notifications.event_reaction("rescheduled", status="confirmed", invited=True)
        waiting = notifications.event_reaction("rescheduled", status="waitlisted", invited=False)
        assert seated == notifications.Reaction("event_rescheduled", "REQUEST", "plan")
        assert waiting == notifications.Reaction("event_rescheduled")

    def test_going_live_is_told_to_the_seated_only(self) -> None:
        seated = notifications.event_reaction("went_live", status="confirmed", invited=True)
        waiting = notifications.event_reaction("went_live", status="waitlisted", invited=False)
        assert seated == notifications.Reaction("event_live")
        assert waiting == notifications.NOTHING

    def test_a_new_schedule_of_reminders_is_planned_for_the_seated_without_an_email(
        self,
    ) -> None:
        for change in ("published", "updated"):
            reaction = notifications.event_reaction(change, status="confirmed", invited=True)
            assert reaction == notifications.Reaction(reminders="plan")
        assert notifications.event_reaction("ended", status="confirmed", invited=True) == (
            notifications.NOTHING
        )


def test_only_5xx_answers_are_permanent() -> None:
    assert notifications.is_permanent(550)
    assert not notifications.is_permanent(451)
    assert not notifications.is_permanent(None)


def test_retries_back_off_up_to_half_an_hour() -> None:
    assert notifications.retry_delay(1) == timedelta(seconds=5)
    assert notifications.retry_delay(2) == timedelta(seconds=10)
    assert notifications.retry_delay(30) == timedelta(minutes=30)
