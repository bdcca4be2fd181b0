"""What the notifications service tells people about a cancelled event whatever the order of
the messages, about a changed event (which changes, in which words), and after an event
(thanks, replay, certificate): the rules, and the Dutch e-mails they render to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from sto_notifications import domain
from sto_notifications.adapters.rendering import EmailRenderer
from sto_notifications.domain import Reaction

STARTS = datetime(2026, 11, 18, 14, 0, tzinfo=UTC)  # 15:00 in Amsterdam


# --- a cancelled event -----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["confirmed", "promoted", "waitlisted"])
def test_a_seat_or_waiting_place_after_the_events_cancellation_brings_its_notice_only(
    change: domain.RegistrationChange,
) -> None:
    assert domain.registration_reaction(change, event_cancelled=True) == Reaction(
        "event_cancelled", None, "drop"
    )


def test_a_cancellation_because_of_the_event_is_the_events_notice_withdrawing_the_invitation() -> (
    None
):
    assert domain.registration_reaction(
        "cancelled", previous_status="confirmed", event_cancelled=True, invited=True
    ) == Reaction("event_cancelled", "CANCEL", "drop")


def test_the_cancellation_notice_has_one_key_per_registration_whoever_sends_it() -> None:
    registration = uuid.uuid4()
    assert domain.event_cancelled_key(registration) == f"event_cancelled:{registration}"


def test_an_ordinary_cancellation_and_seat_are_unchanged() -> None:
    assert domain.registration_reaction("confirmed") == Reaction(
        "registration_confirmed", "REQUEST", "plan"
    )
    assert domain.registration_reaction(
        "cancelled", previous_status="confirmed", invited=True
    ) == Reaction("registration_cancelled", "CANCEL", "drop")


# --- a changed event -------------------------------------------------------------------------


def test_the_changes_people_hear_about_come_place_and_link_first() -> None:
    changed = ("capacity", "description", "stream_url", "title", "venue")
    assert domain.noticeable_changes(changed, "published") == (
        "venue",
        "stream_url",
        "title",
        "description",
    )
    assert domain.noticeable_changes(("captions_url",), "live") == ("captions_url",)
    assert domain.noticeable_changes(("capacity", "region_codes"), "published") == ()


@pytest.mark.parametrize("status", ["draft", "ended", "cancelled"])
def test_nothing_is_told_of_an_event_not_ahead_of_its_people(status: str) -> None:
    assert domain.noticeable_changes(("venue", "title"), status) == ()


def test_an_update_brings_the_seated_an_updated_invitation_and_the_waiting_nothing() -> None:
    assert domain.event_reaction(
        "updated", status="confirmed", invited=True, noticed=("venue",)
    ) == Reaction("event_updated", "REQUEST", "plan")
    assert (
        domain.event_reaction("updated", status="waitlisted", invited=False, noticed=("venue",))
        == domain.NOTHING
    )
    # A change nobody is told of still re-plans the reminders (their schedule may be it).
    assert domain.event_reaction("updated", status="confirmed", invited=True) == Reaction(
        reminders="plan"
    )


def render(kind: str, **context: object) -> str:
    base = {
        "name": "Anna de Vries",
        "event_title": "Techniekmiddag Assen",
        "starts_at": STARTS,
        "ends_at": STARTS,
        "manage_url": "https://sto.test/registrations/r/m",
        "venue": "Drenthe College, Assen",
    }
    rendered = EmailRenderer().render(kind, {**base, **context})  # type: ignore[arg-type]
    assert rendered.subject
    return rendered.subject + "\n" + rendered.text


def update(changes: list[str], **context: object) -> str:
    facts: dict[str, object] = {
        "has_calendar": True,
        "previous_venue": "Dr. Nassau College, Assen",
        "previous_title": None,
        "join_url": "https://sto.test/events/watch/e?v=persoonlijk",
    }
    return render("event_updated", changes=changes, **{**facts, **context})


def test_a_new_place_says_the_old_and_the_new_one() -> None:
    text = update(["venue"])
    assert text.startswith("Gewijzigd: Techniekmiddag Assen\n")
    assert "De locatie van Techniekmiddag Assen op woensdag 18 november 2026, 15:00" in text
    assert "Was: Dr. Nassau College, Assen" in text
    assert "Nu: Drenthe College, Assen" in text
    assert "agenda-uitnodiging werkt je agenda bij" in text
    assert "link om te kijken" not in text


def test_a_new_stream_says_the_link_changed_with_the_persons_own_link() -> None:
    text = update(["stream_url"])
    assert "De link om te kijken is gewijzigd" in text
    assert "https://sto.test/events/watch/e?v=persoonlijk" in text
    assert "locatie" not in text


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ("title", "Techniekmiddag Oud heet nu Techniekmiddag Assen."),
        ("description", "De beschrijving van Techniekmiddag Assen is bijgewerkt."),
        ("captions_url", "heeft nu (nieuwe) ondertiteling"),
    ],
)
def test_other_changes_get_one_line_with_the_updated_invitation(change: str, line: str) -> None:
    text = update([change], previous_title="Techniekmiddag Oud")
    assert line in text
    assert "locatie" not in text
    assert "link om te kijken" not in text


# --- after the event -------------------------------------------------------------------------


def test_thanks_go_to_who_was_there_the_replay_to_who_was_not_once_there_is_one() -> None:
    assert domain.follow_up(attended=True, attended_as="live", has_replay=True) == "thank_you"
    assert domain.follow_up(attended=False, attended_as=None, has_replay=True) == "replay"
    assert domain.follow_up(attended=False, attended_as=None, has_replay=False) is None
    # Who attended by replay already has their certificate e-mail: nothing more.
    assert domain.follow_up(attended=True, attended_as="replay", has_replay=True) is None


def test_a_follow_up_has_one_key_per_registration_whatever_the_replay_address() -> None:
    registration = uuid.uuid4()
    assert domain.follow_up_key("replay", registration) == f"replay:{registration}"


def test_only_a_certificate_earned_by_replay_is_mailed_on_its_own() -> None:
    assert domain.certificate_ready("replay", certificate=True)
    assert not domain.certificate_ready("replay", certificate=False)
    assert not domain.certificate_ready("live", certificate=True)  # the thank-you carries it


def test_the_follow_up_emails_carry_the_personal_links_in_dutch() -> None:
    watch = "https://sto.test/events/watch/e?v=persoonlijk"
    certificate = "https://sto.test/analytics/certificaat/c"
    replay = render("replay", watch_url=watch, certificate_url=None)
    assert replay.startswith("Bekijk de terugblik: Techniekmiddag Assen\n")
    assert watch in replay
    thanks = render("thank_you", watch_url=None, certificate_url=certificate)
    assert f"Je certificaat staat klaar: {certificate}" in thanks
    assert "Kijk het terug" not in thanks
    no_certificate = render("thank_you", watch_url=watch, certificate_url=None)
    assert "certificaat" not in no_certificate
    ready = render("certificate_ready", watch_url=watch, certificate_url=certificate)
    assert ready.startswith("Je certificaat staat klaar: Techniekmiddag Assen\n")
    assert certificate in ready
