"""Transactional emails against real PostgreSQL, a real broker and a real SMTP server:
calendar invitations, reminders across the end of summer time, reschedules, cancellations,
going live, follow-ups, SMTP refusals, erasure and retention."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import icalendar
import pytest
from pydantic import SecretStr

from sto_notifications.adapters.mime import build_message
from sto_notifications.adapters.smtp import SmtpPool
from sto_notifications.bootstrap import DEFINITION
from sto_notifications.config import NotificationsSettings
from sto_notifications.consumers import create_consumers, message_handlers
from sto_notifications.domain import NewsletterWish, email_sha256
from sto_notifications.repository import email_status
from sto_notifications.service import (
    EmailSender,
    MailingService,
    NotificationsService,
    Scheduler,
    retention_rules,
)
from stolive_shared import links
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import (
    EventCancelled,
    EventEnded,
    EventRescheduled,
    EventSnapshot,
    EventUpdated,
    EventWentLive,
)
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationsAnonymised,
    RegistrationSignUpRepeated,
    RegistrationStatus,
    RegistrationView,
    RegistrationWaitlisted,
)
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.links import PersonalLinks
from stolive_shared.messaging.consumer import Delivery
from stolive_shared.retention import RetentionJob
from stolive_shared.runtime import Runtime
from stolive_shared.settings import KafkaSettings
from stolive_shared.urls import PublicUrls
from tests.sealing import TEST_KEYS
from tests.support import Clock, ReceivedEmail, SmtpSink, eventually, produce_messages

AMS = ZoneInfo("Europe/Amsterdam")
SCHEMA = "notifications"


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pool = await create_pool(database_url, SCHEMA, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
def settings(database_url: str, smtp: tuple[SmtpSink, int]) -> NotificationsSettings:
    return NotificationsSettings(
        database_url=database_url,
        db_schema=SCHEMA,
        smtp_port=smtp[1],
        smtp_connections=2,
        public_base_url="https://stolive.test",
        link_secret=SecretStr("integration-test-link-secret"),
        events_api_url="http://127.0.0.1:9",
    )


@dataclass
class Harness:
    pool: asyncpg.Pool
    settings: NotificationsSettings
    clock: Clock
    service: NotificationsService
    sender: EmailSender
    scheduler: Scheduler
    sink: SmtpSink

    async def handle(self, message: Message) -> None:
        """Run the consumer's handler for ``message`` in a transaction, as the loop does."""
        handler = message_handlers(self.service)[type(message)]
        async with self.pool.acquire() as conn, conn.transaction():
            await TEST_KEYS.store(conn)
            await handler(conn, message, Delivery("test", 0, 0, 0))

    async def deliver(self) -> int:
        return await self.sender.drain()

    async def at(self, moment: datetime) -> dict[str, int]:
        self.clock.now = moment
        return await self.scheduler.tick()

    def mail_to(self, address: str) -> list[ReceivedEmail]:
        return self.sink.to(address)


@pytest.fixture
def harness(
    pool: asyncpg.Pool, settings: NotificationsSettings, smtp: tuple[SmtpSink, int]
) -> Harness:
    clock = Clock(datetime(2026, 10, 1, 12, 0, tzinfo=UTC))
    service = NotificationsService(
        schema=SCHEMA,
        links=PersonalLinks(settings.link_key(), PublicUrls(settings.public_base_url)),
        mail_from=settings.mail_from,
        clock=clock,
    )
    mailings = MailingService(pool, settings, clock=clock)
    return Harness(
        pool=pool,
        settings=settings,
        clock=clock,
        service=service,
        sender=EmailSender(pool, settings, clock=clock),
        scheduler=Scheduler(pool, settings, service, mailings, clock=clock),
        sink=smtp[0],
    )


def address() -> str:
    return f"docent-{uuid.uuid4().hex[:8]}@school.nl"


def snapshot(
    event_id: uuid.UUID, starts_at: datetime, revision: int, **changes: Any
) -> EventSnapshot:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "revision": revision,
        "kind": "webinar",
        "status": "published",
        "title": "STO LIVE #27: wat we leren van onderzoek",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=1),
        **changes,
    }
    return EventSnapshot(**fields)


def view(
    event: EventSnapshot,
    email: str,
    status: RegistrationStatus = "confirmed",
    name: str = "Anna de Vries",
) -> RegistrationView:
    return TEST_KEYS.view(
        event_id=event.event_id,
        status=status,
        name=name,
        email=email,
        role="docent",
        region_code="NN",
        event_title=event.title,
        event_starts_at=event.starts_at,
        event_ends_at=event.ends_at,
        event_revision=event.revision,
    )


def calendar_of(email: ReceivedEmail) -> tuple[icalendar.Calendar, icalendar.Event, str]:
    parts = [p for p in email.message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one calendar part"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = icalendar.Calendar.from_ical(payload)
    events = [c for c in calendar.walk() if isinstance(c, icalendar.Event)]
    assert len(events) == 1
    return calendar, events[0], str(parts[0].get_param("method"))


def sequence_of(vevent: icalendar.Event) -> int:
    return int(str(vevent["SEQUENCE"]))


def text_of(email: ReceivedEmail) -> str:
    body = email.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_the_confirmation_arrives_through_kafka_with_an_invitation_a_calendar_reads(
    pool: asyncpg.Pool, settings: NotificationsSettings, kafka: KafkaSettings, harness: Harness
) -> None:
    starts = datetime(2026, 12, 9, 15, 30, tzinfo=AMS)  # shown as 15:30 in Amsterdam
    event = snapshot(uuid.uuid4(), starts, revision=3)
    email = address()
    registration = view(event, email)
    harness.clock.now = datetime.now(UTC) + timedelta(minutes=1)  # the consumer uses real time
    runtime = Runtime(settings=settings.model_copy(update={"kafka": kafka}), pool=pool)
    parts = DEFINITION.bootstrap(runtime)
    consumer = next(c for c in create_consumers(parts) if "registrations" in c.name)
    task = asyncio.create_task(consumer.run())
    try:
        await TEST_KEYS.store(pool)
        await produce_messages(kafka, [RegistrationConfirmed.create(registration=registration)])

        async def delivered() -> list[ReceivedEmail]:
            await harness.deliver()
            return harness.mail_to(email)

        [received] = await eventually(delivered, timeout_s=30, what="the confirmation")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert received.subject == f"Je bent aangemeld: {event.title}"
    assert "woensdag 9 december 2026, 15:30" in text_of(received)
    calendar, vevent, method = calendar_of(received)
    assert method == "REQUEST"
    assert str(calendar["METHOD"]) == "REQUEST"
    assert vevent.decoded("DTSTART") == datetime(2026, 12, 9, 14, 30, tzinfo=UTC)
    assert vevent.decoded("DTEND") == datetime(2026, 12, 9, 15, 30, tzinfo=UTC)
    assert str(vevent["UID"]) == f"{registration.registration_id}@stolive.sterktechniekonderwijs.nl"
    assert sequence_of(vevent) == 0
    assert str(vevent["SUMMARY"]) == event.title


async def test_reminders_go_once_each_at_their_utc_moment_across_the_dst_change(
    harness: Harness,
) -> None:
    # 10:00 on Sunday 25 October 2026 in Amsterdam is 09:00 UTC: summer time ended at 03:00.
    starts = datetime(2026, 10, 25, 10, 0, tzinfo=AMS)
    assert starts.astimezone(UTC) == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    email = address()
    harness.clock.now = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
    await harness.handle(RegistrationConfirmed.create(registration=view(event, email)))
    await harness.deliver()
    assert [m.subject for m in harness.mail_to(email)] == [f"Je bent aangemeld: {event.title}"]

    # 24 elapsed hours before: 09:00 UTC on Saturday, which is 11:00 summer time there.
    day_before = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)
    assert (await harness.at(day_before - timedelta(seconds=1)))["reminders"] == 0
    assert (await harness.at(day_before))["reminders"] == 1
    assert (await harness.at(day_before + timedelta(minutes=5)))["reminders"] == 0
    await harness.deliver()
    reminders = [m for m in harness.mail_to(email) if m.subject.startswith("Herinnering")]
    assert [m.subject for m in reminders] == [f"Herinnering: {event.title} begint over 1 dag"]

    hour_before = datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 winter time
    assert (await harness.at(hour_before - timedelta(seconds=1)))["reminders"] == 0
    assert (await harness.at(hour_before))["reminders"] == 1
    # A second scheduler (another worker, or this one restarted) finds nothing left to do.
    again = Scheduler(
        harness.pool,
        harness.settings,
        harness.service,
        MailingService(harness.pool, harness.settings, clock=harness.clock),
        clock=harness.clock,
    )
    assert (await again.tick())["reminders"] == 0
    await harness.deliver()
    await harness.deliver()
    reminders = [m for m in harness.mail_to(email) if m.subject.startswith("Herinnering")]
    assert len(reminders) == 2
    assert reminders[1].subject == f"Herinnering: {event.title} begint over 1 uur"
    async with harness.pool.acquire() as conn:
        queued_at = await conn.fetch(
            "SELECT e.next_attempt_at FROM reminders r JOIN emails e ON e.id = r.email_id"
            " JOIN registrations g ON g.registration_id = r.registration_id"
            " WHERE g.email = $1 ORDER BY 1",
            email,
        )
    assert [r["next_attempt_at"] for r in queued_at] == [day_before, hour_before]


async def test_a_reschedule_moves_the_reminders_and_sends_a_newer_invitation(
    harness: Harness,
) -> None:
    starts = datetime(2026, 11, 18, 15, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=2)
    email = address()
    harness.clock.now = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    registration = view(event, email)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    await harness.deliver()
    [confirmation] = harness.mail_to(email)
    _, first, _ = calendar_of(confirmation)

    later = datetime(2026, 11, 25, 15, 0, tzinfo=AMS)
    moved = snapshot(event.event_id, later, revision=3)
    await harness.handle(
        EventRescheduled.create(
            event=moved, previous_starts_at=event.starts_at, previous_ends_at=event.ends_at
        )
    )
    await harness.deliver()
    [_, notice] = harness.mail_to(email)
    assert notice.subject == f"Nieuwe datum: {event.title}"
    assert "woensdag 25 november 2026, 15:00" in text_of(notice)
    _, updated, method = calendar_of(notice)
    assert method == "REQUEST"
    assert str(updated["UID"]) == str(first["UID"])
    assert sequence_of(updated) > sequence_of(first)
    assert updated.decoded("DTSTART") == later.astimezone(UTC)

    # The old moments pass without a reminder; the new ones bring one each.
    assert (await harness.at(starts.astimezone(UTC) - timedelta(hours=1)))["reminders"] == 0
    assert (await harness.at(later.astimezone(UTC) - timedelta(hours=24)))["reminders"] == 1
    assert (await harness.at(later.astimezone(UTC) - timedelta(hours=1)))["reminders"] == 1
    await harness.deliver()
    subjects = [m.subject for m in harness.mail_to(email)]
    assert subjects.count(f"Herinnering: {event.title} begint over 1 dag") == 1
    assert subjects.count(f"Herinnering: {event.title} begint over 1 uur") == 1


async def test_a_cancelled_event_drops_the_reminders_and_cancels_the_invitation(
    harness: Harness,
) -> None:
    starts = datetime(2026, 12, 2, 14, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    attendee, waiting = address(), address()
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    registration = view(event, attendee)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    await harness.handle(
        RegistrationWaitlisted.create(
            registration=view(event, waiting, status="waitlisted"), waitlist_position=1
        )
    )
    cancelled = snapshot(event.event_id, starts, revision=2, status="cancelled")
    await harness.handle(EventCancelled.create(event=cancelled, reason="De spreker is ziek."))
    await harness.deliver()

    notice = harness.mail_to(attendee)[-1]
    assert notice.subject == f"Gaat niet door: {event.title}"
    assert "De spreker is ziek." in text_of(notice)
    _, vevent, method = calendar_of(notice)
    assert method == "CANCEL"
    assert str(vevent["STATUS"]) == "CANCELLED"
    assert sequence_of(vevent) == 1
    assert [m.subject for m in harness.mail_to(waiting)][-1] == f"Gaat niet door: {event.title}"
    # Registrations then cancels the seats of the cancelled event: no second notice.
    await harness.handle(
        RegistrationCancelled.create(
            registration=registration.model_copy(update={"status": "cancelled"}),
            previous_status="confirmed",
            reason="event cancelled",
        )
    )
    await harness.deliver()
    assert [m.subject for m in harness.mail_to(attendee)] == [
        f"Je bent aangemeld: {event.title}",
        f"Gaat niet door: {event.title}",
    ]
    for moment in (starts - timedelta(hours=24), starts - timedelta(hours=1)):
        assert (await harness.at(moment.astimezone(UTC)))["reminders"] == 0
    assert not [m for m in harness.mail_to(attendee) if m.subject.startswith("Herinnering")]


async def test_a_cancelled_registration_drops_its_reminders_and_cancels_its_invitation(
    harness: Harness,
) -> None:
    starts = datetime(2026, 12, 3, 16, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    email = address()
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    registration = view(event, email)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    await harness.handle(
        RegistrationCancelled.create(
            registration=registration.model_copy(update={"status": "cancelled"}),
            previous_status="confirmed",
        )
    )
    await harness.deliver()
    notice = harness.mail_to(email)[-1]
    assert notice.subject == f"Je aanmelding is geannuleerd: {event.title}"
    _, vevent, method = calendar_of(notice)
    assert (method, sequence_of(vevent)) == ("CANCEL", 1)
    assert (await harness.at(starts.astimezone(UTC) - timedelta(hours=1)))["reminders"] == 0


async def test_a_repeated_sign_up_tells_the_address_itself_once_with_its_own_links(
    harness: Harness,
) -> None:
    starts = datetime(2026, 12, 3, 16, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    email = address()
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    registration = view(event, email, status="waitlisted").model_copy(update={"webinar": True})
    links = harness.service.links
    repeated = RegistrationSignUpRepeated.create(registration=registration)
    await harness.handle(repeated)
    await harness.handle(repeated)  # redelivered: still one e-mail
    await harness.deliver()
    [told] = harness.mail_to(email)
    assert told.subject == f"Je was al aangemeld: {event.title}"
    text = text_of(told)
    assert "je staat op de wachtlijst" in text
    assert links.manage(registration.registration_id) in text
    assert links.watch(event.event_id, registration.viewer_id) in text
    assert "iemand anders je e-mailadres ingevuld" in text
    # Another repeat later is another notice (registrations decides how often one is sent).
    await harness.handle(RegistrationSignUpRepeated.create(registration=registration))
    await harness.deliver()
    assert len(harness.mail_to(email)) == 2


async def test_a_late_sign_up_skips_past_reminders_and_downtime_is_caught_up(
    harness: Harness,
) -> None:
    starts = datetime(2026, 12, 4, 10, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    late, early = address(), address()
    harness.clock.now = starts.astimezone(UTC) - timedelta(hours=3)  # 24 h moment has passed
    await harness.handle(RegistrationConfirmed.create(registration=view(event, late)))
    harness.clock.now = starts.astimezone(UTC) - timedelta(days=3)
    await harness.handle(RegistrationConfirmed.create(registration=view(event, early)))
    # The service was down from two days before until 30 minutes before the start.
    assert (await harness.at(starts.astimezone(UTC) - timedelta(minutes=30)))["reminders"] == 3
    await harness.deliver()
    assert [m.subject for m in harness.mail_to(late) if "Herinnering" in m.subject] == [
        f"Herinnering: {event.title} begint over 1 uur"
    ]
    assert len([m for m in harness.mail_to(early) if "Herinnering" in m.subject]) == 2

    # A reminder that falls due while down until after the start is missed, not sent.
    other = snapshot(uuid.uuid4(), starts + timedelta(days=1), revision=1)
    missed = address()
    harness.clock.now = starts.astimezone(UTC) - timedelta(hours=1)
    await harness.handle(RegistrationConfirmed.create(registration=view(other, missed)))
    assert (await harness.at(other.starts_at.astimezone(UTC) + timedelta(minutes=5)))[
        "reminders"
    ] == 0
    async with harness.pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT r.status FROM reminders r JOIN registrations g USING (registration_id)"
            " WHERE g.email = $1",
            missed,
        )
    assert sorted(r["status"] for r in statuses) == ["missed", "missed"]


async def test_going_live_then_the_follow_ups_after_attendance_is_final(harness: Harness) -> None:
    starts = datetime(2026, 12, 5, 15, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    watched, missed = address(), address()
    harness.clock.now = starts.astimezone(UTC) - timedelta(days=2)
    there = view(event, watched)
    away = view(event, missed)
    for registration in (there, away):
        await harness.handle(RegistrationConfirmed.create(registration=registration))
    live = snapshot(event.event_id, starts, revision=2, status="live")
    harness.clock.now = starts.astimezone(UTC)
    await harness.handle(EventWentLive.create(event=live))
    await harness.handle(EventWentLive.create(event=live))  # redelivered with a new id
    await harness.deliver()
    [live_mail] = [m for m in harness.mail_to(watched) if m.subject.startswith("We zijn live")]
    join = links.watch_url(
        "https://stolive.test", "integration-test-link-secret", event.event_id, there.viewer_id
    )
    assert join in text_of(live_mail)

    replay = "https://stolive.test/events/replay/27"
    ended = snapshot(event.event_id, starts, revision=3, status="ended", replay_url=replay)
    await harness.handle(EventEnded.create(event=ended))
    await harness.handle(
        AttendanceRecorded.create(
            event_id=event.event_id,
            registration_id=there.registration_id,
            minutes_watched=41.0,
            watched_live=True,
            checked_in=False,
            attended=True,
        )
    )
    finalised = AttendanceFinalised.create(
        event_id=event.event_id,
        ended_at=starts + timedelta(hours=1),
        registrants=2,
        attended=1,
        min_minutes_for_attendance=10.0,
    )
    await harness.handle(finalised)
    await harness.handle(finalised.model_copy(update={"message_id": uuid.uuid4()}))
    await harness.deliver()
    assert harness.mail_to(watched)[-1].subject == f"Bedankt voor je deelname aan {event.title}"
    [replay_mail] = [m for m in harness.mail_to(missed) if "terugblik" in m.subject]
    # Their own watch page, where their viewing of the replay counts for them.
    assert harness.service.links.watch(event.event_id, away.viewer_id) in text_of(replay_mail)
    assert replay not in text_of(replay_mail)
    assert not [m for m in harness.mail_to(watched) if "terugblik" in m.subject]


async def test_a_5xx_recipient_is_not_retried_and_a_4xx_one_is(harness: Harness) -> None:
    starts = datetime(2026, 12, 7, 15, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    gone, busy = address(), address()
    harness.sink.refuse[gone] = "550 5.1.1 Mailbox does not exist"
    harness.sink.refuse[busy] = "451 4.2.0 Try again later"
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for email in (gone, busy):
        await harness.handle(RegistrationConfirmed.create(registration=view(event, email)))
    await harness.deliver()

    async def state(email: str) -> tuple[str, int, datetime]:
        async with harness.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT status, attempts, next_attempt_at FROM emails WHERE recipient = $1", email
            )
        assert row is not None
        return row["status"], row["attempts"], row["next_attempt_at"]

    assert (await state(gone))[:2] == ("failed", 1)
    status, attempts, retry_at = await state(busy)
    assert (status, attempts) == ("queued", 1)
    assert retry_at == harness.clock.now + timedelta(seconds=5)

    del harness.sink.refuse[busy]
    harness.clock.now = retry_at
    await harness.deliver()
    assert (await state(busy))[:2] == ("sent", 2)
    assert len(harness.mail_to(busy)) == 1
    harness.clock.now += timedelta(hours=1)
    await harness.deliver()
    assert (await state(gone))[:2] == ("failed", 1), "a permanent failure is never tried again"

    # One hard bounce suppresses the address: the next emails are not even attempted.
    later = snapshot(uuid.uuid4(), starts + timedelta(days=7), revision=1)
    await harness.handle(RegistrationConfirmed.create(registration=view(later, gone)))
    await harness.deliver()
    third = snapshot(uuid.uuid4(), starts + timedelta(days=14), revision=1)
    await harness.handle(RegistrationConfirmed.create(registration=view(third, gone)))
    async with harness.pool.acquire() as conn:
        statuses = [
            r["status"]
            for r in await conn.fetch(
                "SELECT status FROM emails WHERE recipient = $1 ORDER BY created_at", gone
            )
        ]
        scope = await conn.fetchval(
            "SELECT scope FROM suppressed WHERE person_key = $1", harness.service.person_key(gone)
        )
    assert statuses == ["failed", "suppressed", "suppressed"]
    assert scope == "all"
    async with harness.pool.acquire() as conn:
        outcomes = await conn.fetch(
            "SELECT headers->>'type' AS type FROM outbox WHERE topic = 'sto.notifications'"
        )
    assert {"email.failed", "email.sent"} <= {r["type"] for r in outcomes}


async def test_a_sender_told_to_stop_mid_send_records_the_email_so_it_goes_once(
    harness: Harness,
) -> None:
    """SIGTERM cancels the sender (the launcher does so when it restarts a worker). The email
    the server already took is still recorded as sent, so the next sender does not resend it."""
    event = snapshot(uuid.uuid4(), datetime(2026, 12, 9, 15, 30, tzinfo=AMS), revision=1)
    recipient = address()
    registration = view(event, recipient)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    harness.sink.answer_delay_s = 0.5
    try:
        sending = asyncio.create_task(harness.sender.run())
        await eventually(lambda: harness.mail_to(recipient), what="the server has the email")
        sending.cancel()  # before its 250 came back
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    finally:
        harness.sink.answer_delay_s = 0.0

    next_process = EmailSender(harness.pool, harness.settings, clock=harness.clock)
    await next_process.drain()
    async with harness.pool.acquire() as conn:
        emails = await email_status(conn, registration.registration_id)
    assert [(e["kind"], e["status"], e["attempts"]) for e in emails] == [
        ("registration_confirmed", "sent", 1)
    ]
    assert len(harness.mail_to(recipient)) == 1
    assert next_process.stats.requeued_after_crash == 0


async def test_a_sender_told_to_stop_waits_for_the_slowest_send_under_way(
    harness: Harness,
) -> None:
    """The other connection's send ends first and that part of the sender stops; the
    sender must still wait for the slow one. Before, the first part to stop made the rest
    be told to stop again, the slow send was abandoned, the process went on to close its
    database pool, and the email the server had taken was sent once more by the next one."""
    event = snapshot(uuid.uuid4(), datetime(2026, 12, 9, 15, 30, tzinfo=AMS), revision=1)
    slow = address()
    others = [address() for _ in range(8)]  # some share no SMTP connection with ``slow``
    registrations = [view(event, recipient) for recipient in [slow, *others]]
    for registration in registrations:
        await harness.handle(RegistrationConfirmed.create(registration=registration))
    harness.sink.answer_delays = {slow: 1.0, **dict.fromkeys(others, 0.05)}
    try:
        sending = asyncio.create_task(harness.sender.run())
        await eventually(lambda: harness.mail_to(slow), what="the server has the slow email")
        sending.cancel()  # while its 250 is a second away
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    finally:
        harness.sink.answer_delays = {}

    # The sender has stopped: a process would now close its pool and exit.
    async with harness.pool.acquire() as conn:
        [email] = await email_status(conn, registrations[0].registration_id)
    assert (email["status"], len(harness.mail_to(slow))) == ("sent", 1)


async def test_a_connection_whose_send_was_cancelled_is_not_used_again(
    settings: NotificationsSettings, smtp: tuple[SmtpSink, int]
) -> None:
    """A send cancelled halfway leaves its SMTP conversation halfway: the server's late
    answer would be read as the answer to the next command on that connection."""
    sink, _port = smtp
    pool = SmtpPool(settings.model_copy(update={"smtp_connections": 1}))
    interrupted, following = address(), address()

    def message_to(recipient: str) -> EmailMessage:
        return build_message(
            email_id=uuid.uuid4(), sender=settings.mail_from, recipient=recipient,
            subject="Test", text="Hallo", html_body="<p>Hallo</p>",
        )  # fmt: skip

    sink.answer_delays = {interrupted: 0.5}
    try:
        sending = asyncio.create_task(pool.send(message_to(interrupted)))
        await eventually(lambda: sink.to(interrupted), what="the server has the first email")
        sending.cancel()  # before its 250 came back
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        await pool.send(message_to(following))
    finally:
        sink.answer_delays = {}
        await pool.close()
    assert len(sink.to(following)) == 1


@pytest.mark.parametrize("named_by", ["keyed hash", "plain sha256 (version 1)"])
async def test_an_erased_person_loses_their_queued_mail_and_reminders(
    harness: Harness, named_by: str
) -> None:
    starts = datetime(2026, 12, 8, 15, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    email = address()
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    registration = view(event, email)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    async with harness.pool.acquire() as conn, conn.transaction():
        await harness.service.subscribe(
            conn,
            NewsletterWish(
                email=email.upper(),
                name="Anna",
                role="docent",
                region_code="NN",
                interests=("PIE",),
                source="subscribe_form",
            ),
        )
    person = (
        {"person_key": harness.service.person_key(email)}
        if named_by == "keyed hash"
        else {"email_sha256": email_sha256(email)}
    )
    await harness.handle(
        PersonErased.create(
            registration_ids=(registration.registration_id,),
            erased_at=harness.clock.now,
            **person,
        )
    )
    async with harness.pool.acquire() as conn:
        left = await conn.fetchval(
            "SELECT (SELECT count(*) FROM emails WHERE lower(recipient) = $1)"
            " + (SELECT count(*) FROM subscribers WHERE email = $1)"
            " + (SELECT count(*) FROM registrations WHERE email = $1)"
            " + (SELECT count(*) FROM reminders WHERE registration_id = $2)",
            email,
            registration.registration_id,
        )
    assert left == 0
    await harness.deliver()
    assert harness.mail_to(email) == []


async def test_a_sign_up_with_the_newsletter_opt_in_still_confirms_by_email(
    harness: Harness,
) -> None:
    event = snapshot(uuid.uuid4(), datetime(2026, 12, 10, 15, 0, tzinfo=AMS), revision=1)
    email = address()
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    registration = view(event, email).model_copy(update={"newsletter_opt_in": True})
    async with harness.pool.acquire() as conn, conn.transaction():
        await TEST_KEYS.store(conn)
        await harness.service.on_seat(conn, RegistrationConfirmed.create(registration=registration))
    await harness.deliver()
    subjects = sorted(m.subject for m in harness.mail_to(email))
    assert subjects == [
        "Bevestig je aanmelding voor de nieuwsbrief van STO",
        f"Je bent aangemeld: {event.title}",
    ]
    async with harness.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, region_code, role, source FROM subscribers WHERE email = $1", email
        )
    assert row is not None
    assert dict(row) == {
        "status": "pending",
        "region_code": "NN",
        "role": "docent",
        "source": "registration",
    }


async def test_the_events_own_reminder_schedule_is_followed_when_it_changes(
    harness: Harness,
) -> None:
    starts = datetime(2026, 12, 11, 19, 30, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    email = address()
    harness.clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    await harness.handle(RegistrationConfirmed.create(registration=view(event, email)))
    changed = snapshot(event.event_id, starts, revision=2, reminder_offsets_hours=(48.0, 2.5))
    await harness.handle(EventUpdated.create(event=changed, changed_fields=("reminders",)))
    async with harness.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT r.offset_minutes, r.status, r.due_at FROM reminders r"
            " JOIN registrations g ON g.registration_id = r.registration_id"
            " WHERE g.email = $1 ORDER BY r.offset_minutes",
            email,
        )
    utc_start = starts.astimezone(UTC)
    assert [(r["offset_minutes"], r["status"], r["due_at"]) for r in rows] == [
        (60, "dropped", utc_start - timedelta(hours=1)),
        (150, "pending", utc_start - timedelta(minutes=150)),
        (1440, "dropped", utc_start - timedelta(hours=24)),
        (2880, "pending", utc_start - timedelta(hours=48)),
    ]
    assert (await harness.at(utc_start - timedelta(hours=24)))["reminders"] == 1  # 48 h, caught up
    assert (await harness.at(utc_start - timedelta(hours=1)))["reminders"] == 1  # 2.5 h, caught up
    await harness.deliver()
    assert sorted(m.subject for m in harness.mail_to(email) if "Herinnering" in m.subject) == [
        f"Herinnering: {event.title} begint over 150 minuten",
        f"Herinnering: {event.title} begint over 2 dagen",
    ]


async def test_rows_from_before_keyed_hashes_get_theirs_and_the_old_bounce_list_moves(
    harness: Harness,
) -> None:
    email = address()
    async with harness.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO subscribers (id, email, email_sha256, name, status, source)
               VALUES ($1, $2, '', 'Oud', 'confirmed', 'subscribe_form')""",
            uuid.uuid4(),
            email,
        )
        await conn.execute(
            "INSERT INTO suppressions (email, reason, scope) VALUES ($1, 'hard_bounce', 'all')",
            email,
        )
        async with conn.transaction():
            assert await harness.service.fill_person_keys(conn) >= 2
        key = await conn.fetchval("SELECT person_key FROM subscribers WHERE email = $1", email)
        moved = await conn.fetchval("SELECT scope FROM suppressed WHERE person_key = $1", key)
        left = await conn.fetchval("SELECT count(*) FROM suppressions WHERE email = $1", email)
    assert key == harness.service.person_key(email)
    assert (moved, left) == ("all", 0)


async def test_past_their_periods_lapsed_sign_ups_mail_content_and_mailing_addresses_go(
    harness: Harness,
) -> None:
    """The retention rules, against the real tables: what passed its period goes, what is
    still within it (or needed for counting) stays."""
    event = snapshot(uuid.uuid4(), datetime(2026, 12, 10, 15, 0, tzinfo=AMS), revision=1)
    attendee, pending, confirmed = address(), address(), address()
    registration = view(event, attendee)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    async with harness.pool.acquire() as conn, conn.transaction():
        for email in (pending, confirmed):
            await harness.service.subscribe(
                conn,
                NewsletterWish(
                    email=email,
                    name="Bram",
                    role="docent",
                    region_code="NN",
                    interests=(),
                    source="subscribe_form",
                ),
            )
        await conn.execute(
            "UPDATE subscribers SET status = 'confirmed' WHERE email = $1", confirmed
        )
        mailing = await conn.fetchval(
            """INSERT INTO mailings (id, subject, body, audience, status, created_by, finished_at)
               VALUES ($1, 'Nieuwsbrief', 'Tekst', '{}', 'sent', 'redactie', now())
               RETURNING id""",
            uuid.uuid4(),
        )
        await conn.execute(
            """INSERT INTO mailing_recipients (id, mailing_id, email, name, status, person_key)
               VALUES ($1, $2, $3, 'Bram', 'sent', $4)""",
            uuid.uuid4(),
            mailing,
            confirmed,
            harness.service.person_key(confirmed),
        )
    await harness.deliver()
    real_now = datetime.now(UTC)

    def job(days_later: float) -> RetentionJob:
        later = Clock(real_now + timedelta(days=days_later))
        return RetentionJob(retention_rules(harness.pool, harness.settings, later), 3600)

    within = await job(6).run_once()
    assert within["lapsed_subscribers"] == 0
    assert within["email_content"] == 0

    await job(8).run_once()
    async with harness.pool.acquire() as conn:
        subscribed = {r["email"] for r in await conn.fetch("SELECT email FROM subscribers")}
    assert pending not in subscribed
    assert confirmed in subscribed

    await job(91).run_once()
    async with harness.pool.acquire() as conn:
        mails = await conn.fetch(
            """SELECT kind, recipient, recipient_key, subject, body_text, body_html, ics
               FROM emails WHERE registration_id = $1 OR recipient_key = ANY($2::text[])""",
            registration.registration_id,
            [harness.service.person_key(a) for a in (attendee, pending, confirmed)],
        )
        on_mailing = await conn.fetchrow(
            "SELECT email, name, status, person_key FROM mailing_recipients WHERE mailing_id = $1",
            mailing,
        )
    kinds = {m["kind"] for m in mails}
    assert {"registration_confirmed", "subscription_confirmation"} <= kinds
    assert all((m["body_text"], m["body_html"], m["ics"]) == ("", "", None) for m in mails)
    assert all(m["subject"] and m["recipient_key"] for m in mails)
    by_kind = {m["kind"]: m["recipient"] for m in mails}
    assert by_kind["registration_confirmed"] == attendee  # until the registration goes
    assert by_kind["subscription_confirmation"] == "gewist"
    assert on_mailing is not None
    assert confirmed not in (on_mailing["email"], on_mailing["name"])
    assert on_mailing["status"] == "sent"
    assert on_mailing["person_key"] == harness.service.person_key(confirmed)


async def test_anonymised_registrations_leave_no_copy_and_no_mail_behind(
    harness: Harness,
) -> None:
    starts = datetime(2026, 12, 8, 15, 0, tzinfo=AMS)
    event = snapshot(uuid.uuid4(), starts, revision=1)
    gone, stays = view(event, address()), view(event, address(), name="Bram Jansen")
    harness.clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for registration in (gone, stays):
        await harness.handle(RegistrationConfirmed.create(registration=registration))
    await harness.deliver()
    await harness.handle(
        RegistrationsAnonymised.create(
            event_id=event.event_id,
            registration_ids=(gone.registration_id,),
            anonymised_at=harness.clock.now,
        )
    )
    async with harness.pool.acquire() as conn:
        copies = await conn.fetch(
            "SELECT registration_id FROM registrations WHERE event_id = $1", event.event_id
        )
        mails = await conn.fetch(
            """SELECT registration_id, recipient, body_text FROM emails
               WHERE registration_id = ANY($1::uuid[])""",
            [gone.registration_id, stays.registration_id],
        )
        reminders = await conn.fetchval(
            "SELECT count(*) FROM reminders WHERE registration_id = $1", gone.registration_id
        )
    assert [r["registration_id"] for r in copies] == [stays.registration_id]
    assert reminders == 0
    for mail in mails:
        if mail["registration_id"] == gone.registration_id:
            assert (mail["recipient"], mail["body_text"]) == ("gewist", "")
        else:
            assert mail["body_text"] != ""


async def test_an_erasure_while_the_confirmation_is_being_sent_leaves_no_copy_behind(
    harness: Harness,
) -> None:
    """The mail server has the confirmation but has not answered yet when the person is
    erased: once the send is over, nothing here holds the address, not the e-mail row the
    sender comes back to, not the outbox."""
    event = snapshot(uuid.uuid4(), datetime(2026, 12, 11, 15, 0, tzinfo=AMS), revision=1)
    recipient = address()
    registration = view(event, recipient)
    await harness.handle(RegistrationConfirmed.create(registration=registration))
    harness.sink.answer_delays[recipient] = 5.0
    try:
        sending = asyncio.create_task(harness.sender.drain())
        await eventually(lambda: harness.mail_to(recipient), what="the server has the e-mail")
        await harness.handle(
            PersonErased.create(
                person_key=harness.service.person_key(recipient),
                registration_ids=(registration.registration_id,),
                erased_at=harness.clock.now,
            )
        )
        assert not sending.done(), "the erasure came while the send was under way"
        await sending
    finally:
        harness.sink.answer_delays.pop(recipient, None)
    async with harness.pool.acquire() as conn:
        holding = await conn.fetch(
            """SELECT 'emails' AS place FROM emails
                   WHERE lower(recipient) = $1 OR body_text LIKE '%' || $1 || '%'
               UNION ALL SELECT 'registrations' FROM registrations WHERE lower(email) = $1
               UNION ALL SELECT 'subscribers' FROM subscribers WHERE email = $1
               UNION ALL SELECT 'outbox' FROM outbox
                   WHERE encode(payload, 'escape') LIKE '%' || $1 || '%'""",
            recipient,
        )
    assert [row["place"] for row in holding] == []
    assert len(harness.mail_to(recipient)) == 1  # it did go: it was on its way
