"""The e-mails after and around an event, against real PostgreSQL and a real SMTP server,
with the messages fed to the consumer's own handlers in the orders the topics allow:

- a cancelled event: everyone registered is told once, whatever came first (a seat that
  arrives after the cancellation is never confirmed);
- the replay: each no-show gets "Bekijk de terugblik" once with their own watch link, whether
  the replay was there at the finalisation or came after it, however often it changes (its
  address, or only its captions);
- certificates: in the thank-you, and on their own for whoever attends by replay later;
- a changed event: an updated invitation (same UID, higher SEQUENCE) saying what changed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import (
    EventCancelled,
    EventEnded,
    EventReplayPublished,
    EventSnapshot,
    EventUpdated,
)
from stolive_shared.contracts.registrations import (
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationView,
    RegistrationWaitlisted,
)
from tests.integration.test_notifications_emails import (
    AMS,
    Harness,
    address,
    calendar_of,
    harness,
    pool,
    sequence_of,
    settings,
    snapshot,
    text_of,
    view,
)
from tests.support import ReceivedEmail

__all__ = ["harness", "pool", "settings"]  # the fixtures, shared with the e-mails module

STARTS = datetime(2026, 12, 9, 15, 0, tzinfo=AMS)
FIRST_REPLAY = "https://cdn.example/replay/27.m3u8"
SECOND_REPLAY = "https://cdn.example/replay/27-nagemonteerd.m3u8"


async def mails(harness: Harness, email: str) -> list[ReceivedEmail]:
    """What the SMTP server received for ``email``, oldest first, once the queue is sent."""
    await harness.deliver()
    return harness.mail_to(email)


async def subjects(harness: Harness, email: str) -> list[str]:
    return [m.subject for m in await mails(harness, email)]


def calendar_parts(email: ReceivedEmail) -> int:
    return sum(p.get_content_type() == "text/calendar" for p in email.message.walk())


async def feed(harness: Harness, *messages: Message) -> None:
    for message in messages:
        await harness.handle(message)


# --- a cancelled event -----------------------------------------------------------------------

CANCELLATION_ORDERS = {
    "seat, event cancelled, seat cancelled": ("seat", "event", "seat_cancelled"),
    "event cancelled, seat, seat cancelled": ("event", "seat", "seat_cancelled"),
    "seat, seat cancelled, event cancelled": ("seat", "seat_cancelled", "event"),
}


@pytest.mark.parametrize("order", CANCELLATION_ORDERS.values(), ids=CANCELLATION_ORDERS.keys())
async def test_everyone_registered_for_a_cancelled_event_is_told_once_whatever_the_order(
    harness: Harness, order: tuple[str, ...]
) -> None:
    """Registrations and events are two topics, followed side by side: the person's seat,
    the event's cancellation and registrations' cancellation of the seat (which it sends
    after the event's) arrive in any order that keeps the seat before its cancellation."""
    event = snapshot(uuid.uuid4(), STARTS, revision=1)
    email = address()
    harness.clock.now = STARTS.astimezone(UTC) - timedelta(days=3)
    registration = view(event, email)
    cancelled = snapshot(event.event_id, STARTS, revision=2, status="cancelled")
    messages: dict[str, Message] = {
        "seat": RegistrationConfirmed.create(registration=registration),
        "event": EventCancelled.create(event=cancelled, reason="De spreker is ziek."),
        "seat_cancelled": RegistrationCancelled.create(
            registration=registration.model_copy(update={"status": "cancelled"}),
            previous_status="confirmed",
            reason="event_cancelled",
        ),
    }
    await feed(harness, *(messages[step] for step in order))
    await feed(harness, *(messages[step] for step in order))  # redelivered: nothing more

    told = await mails(harness, email)
    notices = [m for m in told if m.subject == f"Gaat niet door: {event.title}"]
    assert len(notices) == 1, [m.subject for m in told]
    if order[0] == "seat":
        # Confirmed first: the notice withdraws the invitation they had.
        assert (await subjects(harness, email))[0] == f"Je bent aangemeld: {event.title}"
        _, invitation, _ = calendar_of(told[0])
        _, withdrawn, method = calendar_of(notices[0])
        assert method == "CANCEL"
        assert str(withdrawn["UID"]) == str(invitation["UID"])
        assert sequence_of(withdrawn) > sequence_of(invitation)
    else:
        # The seat came after the cancellation: no confirmation, no invitation.
        assert await subjects(harness, email) == [f"Gaat niet door: {event.title}"]
        assert calendar_parts(notices[0]) == 0
    assert not [m for m in told if "geannuleerd" in m.subject]
    for moment in (STARTS - timedelta(hours=24), STARTS - timedelta(hours=1)):
        assert (await harness.at(moment.astimezone(UTC)))["reminders"] == 0


async def test_a_waiting_place_after_the_cancellation_is_told_the_event_is_off(
    harness: Harness,
) -> None:
    event = snapshot(uuid.uuid4(), STARTS, revision=1)
    email = address()
    harness.clock.now = STARTS.astimezone(UTC) - timedelta(days=3)
    cancelled = snapshot(event.event_id, STARTS, revision=2, status="cancelled")
    await feed(
        harness,
        EventCancelled.create(event=cancelled),
        RegistrationWaitlisted.create(
            registration=view(event, email, status="waitlisted"), waitlist_position=1
        ),
    )
    assert await subjects(harness, email) == [f"Gaat niet door: {event.title}"]


# --- the replay and the certificates ---------------------------------------------------------


def recorded(
    event_id: uuid.UUID,
    person: Registrant,
    *,
    attended_as: str | None,
    certificate: bool = False,
    live: float = 0.0,
    replay: float = 0.0,
) -> AttendanceRecorded:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "registration_id": person.registration_id,
        "minutes_watched": live + replay,
        "minutes_live": live,
        "minutes_replay": replay,
        "watched_live": live > 0,
        "checked_in": False,
        "attended": attended_as is not None,
        "attended_as": attended_as,
        "certificate": certificate,
    }
    return AttendanceRecorded.create(**fields)


def finalised(event: EventSnapshot, registrants: int, attended: int) -> AttendanceFinalised:
    return AttendanceFinalised.create(
        event_id=event.event_id,
        ended_at=event.ends_at,
        registrants=registrants,
        attended=attended,
        min_minutes_for_attendance=10.0,
    )


def replay_published(
    event: EventSnapshot, revision: int, url: str, previous: str | None, **changes: Any
) -> EventReplayPublished:
    published = snapshot(
        event.event_id, STARTS, revision, status="ended", replay_url=url, **changes
    )
    return EventReplayPublished.create(event=published, previous_replay_url=previous)


class Registrant(NamedTuple):
    registration: RegistrationView
    email: str

    @property
    def registration_id(self) -> uuid.UUID:
        return self.registration.registration_id

    @property
    def viewer_id(self) -> str:
        return self.registration.viewer_id


async def signed_up(harness: Harness, event: EventSnapshot, count: int) -> list[Registrant]:
    """``count`` confirmed registrants; then the clock stands after the event."""
    harness.clock.now = STARTS.astimezone(UTC) - timedelta(days=2)
    people = [Registrant(view(event, email), email) for email in (address() for _ in range(count))]
    await feed(
        harness, *(RegistrationConfirmed.create(registration=p.registration) for p in people)
    )
    harness.clock.now = STARTS.astimezone(UTC) + timedelta(hours=2)
    return people


async def mail_about(harness: Harness, person: Registrant, words: str) -> list[ReceivedEmail]:
    return [m for m in await mails(harness, person.email) if words in m.subject]


async def test_a_replay_after_the_finalisation_reaches_each_no_show_once_with_their_own_link(
    harness: Harness,
) -> None:
    event = snapshot(uuid.uuid4(), STARTS, revision=1)
    there, away, also_away = await signed_up(harness, event, 3)
    ended = snapshot(event.event_id, STARTS, revision=3, status="ended")
    await feed(
        harness,
        EventEnded.create(event=ended),
        recorded(event.event_id, there, attended_as="live", certificate=True, live=41),
        recorded(event.event_id, away, attended_as=None, live=2),
        finalised(event, registrants=3, attended=1),
    )
    links = harness.service.links
    [thanks] = await mail_about(harness, there, "Bedankt")
    assert links.certificate(there.registration_id) in text_of(thanks)
    for person in (away, also_away):  # no replay yet: no e-mail promising one
        assert await mail_about(harness, person, "terugblik") == []

    # The next day the organiser publishes the replay, then corrects its address.
    await feed(harness, replay_published(ended, 4, FIRST_REPLAY, None))
    await feed(harness, replay_published(ended, 5, SECOND_REPLAY, FIRST_REPLAY))
    for person in (away, also_away):
        [replay] = await mail_about(harness, person, "Bekijk de terugblik")
        assert replay.subject == f"Bekijk de terugblik: {event.title}"
        text = text_of(replay)
        assert links.watch(event.event_id, person.viewer_id) in text
        assert FIRST_REPLAY not in text
    assert await mail_about(harness, there, "terugblik") == []

    # A replay attendee's certificate, recorded twice (a refresh): one short e-mail.
    late = recorded(event.event_id, away, attended_as="replay", certificate=True, replay=12)
    await feed(harness, late, late.model_copy(update={"message_id": uuid.uuid4()}))
    [ready] = await mail_about(harness, away, "Je certificaat staat klaar")
    assert links.certificate(away.registration_id) in text_of(ready)
    assert await mail_about(harness, also_away, "certificaat") == []


async def test_a_replay_there_at_the_finalisation_goes_then_and_never_again(
    harness: Harness,
) -> None:
    event = snapshot(uuid.uuid4(), STARTS, revision=1)
    there, away = await signed_up(harness, event, 2)
    ended = snapshot(event.event_id, STARTS, revision=3, status="ended", replay_url=FIRST_REPLAY)
    final = finalised(event, registrants=2, attended=1)
    await feed(
        harness,
        EventEnded.create(event=ended),
        replay_published(ended, 4, FIRST_REPLAY, None),
        recorded(event.event_id, there, attended_as="live", certificate=False, live=30),
        final,
        final.model_copy(update={"message_id": uuid.uuid4()}),
        replay_published(ended, 5, SECOND_REPLAY, FIRST_REPLAY),
    )
    links = harness.service.links
    [thanks] = await mail_about(harness, there, "Bedankt")
    assert links.watch(event.event_id, there.viewer_id) in text_of(thanks)
    assert "certificaat" not in text_of(thanks)
    assert len(await mail_about(harness, away, "terugblik")) == 1


async def test_captions_added_to_the_replay_later_mail_nobody_before_or_after_the_finalisation(
    harness: Harness,
) -> None:
    """The events service says "only the captions changed" as ``event.replay_published``
    with the address as it was: no one hears of it, and the replay e-mail still goes once."""
    event = snapshot(uuid.uuid4(), STARTS, revision=1)
    there, away = await signed_up(harness, event, 2)
    ended = snapshot(event.event_id, STARTS, revision=3, status="ended")
    vtt = "https://cdn.example/replay/27.nl.vtt"
    await feed(
        harness,
        EventEnded.create(event=ended),
        replay_published(ended, 4, FIRST_REPLAY, None),
        replay_published(ended, 5, FIRST_REPLAY, FIRST_REPLAY, captions_url=vtt),
        recorded(event.event_id, there, attended_as="live", live=35),
    )
    for person in (there, away):  # not final yet: nobody is mailed about the replay
        assert await mail_about(harness, person, "terugblik") == []

    await feed(harness, finalised(event, registrants=2, attended=1))
    corrected = "https://cdn.example/replay/27.nl-gecorrigeerd.vtt"
    better = replay_published(ended, 6, FIRST_REPLAY, FIRST_REPLAY, captions_url=corrected)
    await feed(harness, better, better.model_copy(update={"message_id": uuid.uuid4()}))
    assert [m.subject for m in await mails(harness, away.email)] == [
        f"Je bent aangemeld: {event.title}",
        f"Bekijk de terugblik: {event.title}",
    ]
    assert [m.subject for m in await mails(harness, there.email)] == [
        f"Je bent aangemeld: {event.title}",
        f"Bedankt voor je deelname aan {event.title}",
    ]


async def test_a_replay_and_the_finalisation_handled_at_the_same_moment_mail_once(
    harness: Harness,
) -> None:
    """The two messages come from two topics, handled by two consumers side by side: for
    each of these events one of the two sends the replay, never both, never neither."""
    events = [snapshot(uuid.uuid4(), STARTS, revision=1) for _ in range(6)]
    people = {event.event_id: (await signed_up(harness, event, 1))[0] for event in events}
    for event in events:
        await feed(
            harness,
            EventEnded.create(event=snapshot(event.event_id, STARTS, revision=3, status="ended")),
        )
    await asyncio.gather(
        *(
            harness.handle(message)
            for event in events
            for message in (
                replay_published(event, 4, FIRST_REPLAY, None),
                finalised(event, registrants=1, attended=0),
            )
        )
    )
    for event in events:
        assert len(await mail_about(harness, people[event.event_id], "terugblik")) == 1


# --- a changed event -------------------------------------------------------------------------


async def test_a_change_of_place_link_or_title_sends_an_updated_invitation_saying_what_changed(
    harness: Harness,
) -> None:
    meeting = snapshot(
        uuid.uuid4(), STARTS, revision=1, kind="regional_meeting", venue="Dr. Nassau College, Assen"
    )
    seated = address()
    waiting = address()
    harness.clock.now = STARTS.astimezone(UTC) - timedelta(days=5)
    registration = view(meeting, seated)
    await feed(
        harness,
        EventUpdated.create(event=meeting, changed_fields=("capacity",)),
        RegistrationConfirmed.create(registration=registration),
        RegistrationWaitlisted.create(
            registration=view(meeting, waiting, status="waitlisted"), waitlist_position=1
        ),
    )
    [confirmation] = await mails(harness, seated)
    _, first, _ = calendar_of(confirmation)

    moved = EventUpdated.create(
        event=snapshot(
            meeting.event_id,
            STARTS,
            revision=2,
            kind="regional_meeting",
            venue="Drenthe College, Assen",
        ),
        changed_fields=("venue",),
    )
    await feed(harness, moved, moved.model_copy(update={"message_id": uuid.uuid4()}))
    [_, notice] = await mails(harness, seated)
    assert notice.subject == f"Gewijzigd: {meeting.title}"
    text = text_of(notice)
    assert "Was: Dr. Nassau College, Assen" in text
    assert "Nu: Drenthe College, Assen" in text
    _, updated, method = calendar_of(notice)
    assert method == "REQUEST"
    assert str(updated["UID"]) == str(first["UID"])
    assert sequence_of(updated) == sequence_of(first) + 1
    assert str(updated["LOCATION"]) == "Drenthe College, Assen"
    assert (await mails(harness, waiting))[1:] == []  # no invitation to hold: nothing

    streamed = snapshot(
        meeting.event_id,
        STARTS,
        revision=3,
        kind="regional_meeting",
        venue="Drenthe College, Assen",
        stream_url="https://cdn.example/a.m3u8",
    )
    renamed = snapshot(
        meeting.event_id,
        STARTS,
        revision=4,
        kind="regional_meeting",
        venue="Drenthe College, Assen",
        stream_url="https://cdn.example/a.m3u8",
        title="Techniekmiddag Assen",
        description="Met een rondleiding.",
    )
    await feed(
        harness,
        EventUpdated.create(event=streamed, changed_fields=("stream_url",)),
        EventUpdated.create(event=renamed, changed_fields=("description", "title")),
        EventUpdated.create(
            event=snapshot(
                meeting.event_id,
                STARTS,
                revision=5,
                kind="regional_meeting",
                venue="Drenthe College, Assen",
                title="Techniekmiddag Assen",
                description="Met een rondleiding.",
                capacity=80,
            ),
            changed_fields=("capacity",),
        ),
    )
    told = await mails(harness, seated)
    assert [m.subject for m in told[2:]] == [
        f"Gewijzigd: {meeting.title}",
        "Gewijzigd: Techniekmiddag Assen",
    ]
    link = harness.service.links.watch(meeting.event_id, registration.viewer_id)
    assert "De link om te kijken is gewijzigd" in text_of(told[2])
    assert link in text_of(told[2])
    assert f"{meeting.title} heet nu Techniekmiddag Assen." in text_of(told[3])
    assert "De beschrijving van Techniekmiddag Assen is bijgewerkt." in text_of(told[3])
    _, last, _ = calendar_of(told[3])
    assert (str(last["UID"]), sequence_of(last)) == (str(first["UID"]), sequence_of(first) + 3)
    assert str(last["SUMMARY"]) == "Techniekmiddag Assen"
    assert str(last["DESCRIPTION"]) == "Met een rondleiding."


@pytest.mark.parametrize("status", ["draft", "ended", "cancelled"])
async def test_a_change_of_an_event_not_ahead_of_its_people_sends_nothing(
    harness: Harness, status: str
) -> None:
    event = snapshot(uuid.uuid4(), STARTS, revision=1)
    email = address()
    harness.clock.now = STARTS.astimezone(UTC) - timedelta(days=5)
    await feed(harness, RegistrationConfirmed.create(registration=view(event, email)))
    changed = snapshot(event.event_id, STARTS, revision=2, status=status, venue="Elders")
    await feed(harness, EventUpdated.create(event=changed, changed_fields=("venue", "title")))
    assert len(await mails(harness, email)) == 1
