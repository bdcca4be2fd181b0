"""Use cases of the notifications service, and the only place that opens transactions.

Every email is first written to PostgreSQL under a unique key, then sent, then its outcome is
recorded: ``emails`` (one row per transactional email, UNIQUE ``dedup_key``) and
``mailing_recipients`` (one row per person on a mailing, UNIQUE ``(mailing, email)``).

The send/crash window
---------------------
SMTP has no transaction we can join: the server accepts a message (``250`` after the final
dot) and only then can we write "sent". A process killed between the two leaves a row that
was delivered but not recorded. No design removes that window; this one keeps it as small as
the protocol allows and knows exactly which rows fall in it:

1. A sender claims a few rows at a time (``status = 'sending'``, ``claimed_by`` = its key)
   and holds a PostgreSQL advisory lock on that key for its life. A killed process loses its
   connection and with it the lock, so its rows are recognisably orphaned at once (no lease
   to wait out), and any live sender puts them back in the queue.
2. A row is marked 'sent' right after its ``250``: the mailing sender hands the id to a
   writer that flushes the accepted ids with one UPDATE, at most ``mailing_mark_interval_ms``
   (3 ms) after the acceptance and never before the previous flush returned. One UPDATE per
   email costs PostgreSQL more than the SMTP conversation does (measured here: 830-1,270
   emails/s flushing each acceptance alone, 1,450-1,930/s with 3 ms), so a few milliseconds
   of grouping buy half again the throughput. Before the final dot a crash is harmless: the
   SMTP server discards an unfinished DATA, and the row is resent.
3. Only rows accepted in that last interval and round trip can be sent twice: a handful (at
   1,000 emails/s about 3 plus one per connection). They are resent with the same
   ``Message-ID`` (derived from the row id), so mail systems recognise the repeat. Delivery
   is at least once; the duplicates are bounded and visible in the figures the crash test
   prints. Set the interval to 0 for the smallest window at the cost of throughput.

A stop is not a crash: SIGTERM cancels the sender, and each send already under way still
finishes and records its outcome before the process exits (``_finish_despite_cancellation``).
Without that, a restart by the launcher (after a broker outage, say) turned an email accepted
just before it into a second one. Claimed rows not yet handed to SMTP simply go back to the
queue.

Mailing marks are written with ``synchronous_commit = off``: a killed *worker* loses nothing
(PostgreSQL still commits what it received), and only a crash of PostgreSQL itself could
lose the last fraction of a second of marks, which would then be resent like (3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
import zlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from opentelemetry import trace

from sto_notifications import domain, repository
from sto_notifications.calendar import CalendarMethod, Invitation, invitation_ics
from sto_notifications.config import NotificationsSettings
from sto_notifications.domain import Audience, EmailRequest, MailingRefused
from sto_notifications.events_api import EventsDirectory, EventsUnavailable
from sto_notifications.mime import MailingComposer, build_message
from sto_notifications.rendering import NAME_MARK, EmailRenderer, MailingRenderer, RenderedEmail
from sto_notifications.repository import (
    SENDER_LOCK_CLASS,
    ClaimedRecipient,
    EventRow,
    QueuedEmail,
    RegistrationRow,
)
from sto_notifications.smtp import SendFailure, SmtpPool
from stolive_shared import links
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import DEFAULT_REMINDER_OFFSETS_HOURS, EventSnapshot
from stolive_shared.contracts.notifications import (
    EmailFailed,
    EmailKind,
    EmailSent,
    MailingFinished,
)
from stolive_shared.contracts.registrations import RegistrationView
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.errors import DomainError
from stolive_shared.events_client import EventsClient
from stolive_shared.messaging import outbox
from stolive_shared.metrics import EMAILS_FAILED, EMAILS_SENT
from stolive_shared.retry import Backoff
from stolive_shared.telemetry import context_from_traceparent, current_traceparent
from stolive_shared.urls import PublicUrls

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

EMAIL_QUEUED = "notifications_email_queued"
WORK_CHANGED = "notifications_work_changed"
UNSUBSCRIBE = "unsubscribe"
NEWSLETTER_CONFIRM = "newsletter-confirm"


# --- links -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """The personal and public links emails carry, all under the gateway's address."""

    public_base_url: str
    secret: str
    # Where the gateway (or Ingress) serves this service: ROOT_PATH, "/notifications".
    root_path: str = "/notifications"

    @classmethod
    def of(cls, settings: NotificationsSettings) -> Links:
        return cls(
            settings.public_base_url,
            settings.link_key(),
            settings.root_path or "/notifications",
        )

    @property
    def base(self) -> str:
        path = self.root_path.strip("/")
        return self.public_base_url.rstrip("/") + (f"/{path}" if path else "")

    def unsubscribe(self, recipient_id: uuid.UUID) -> str:
        return f"{self.base}/afmelden/{links.sign(self.secret, UNSUBSCRIBE, recipient_id)}"

    def web_version(self, mailing_id: uuid.UUID) -> str:
        return f"{self.base}/mailings/{mailing_id}/online"

    def confirm_subscription(self, subscriber_id: uuid.UUID) -> str:
        token = links.sign(self.secret, NEWSLETTER_CONFIRM, subscriber_id)
        return f"{self.base}/nieuwsbrief/bevestigen/{token}"

    def join(self, event_id: uuid.UUID, viewer_id: str) -> str:
        return links.watch_url(self.public_base_url, self.secret, event_id, viewer_id)


# --- what messages cause ---------------------------------------------------------------------


@dataclass
class NotificationsService:
    """Handles messages inside the consumer's transaction: queue emails, plan reminders."""

    schema: str
    links: Links
    mail_from: str
    clock: Clock = utc_now
    renderer: EmailRenderer = field(default_factory=EmailRenderer)

    async def _queue(
        self,
        conn: asyncpg.Connection,
        request: EmailRequest,
        *,
        calendar: tuple[RegistrationRow, EventRow, CalendarMethod] | None = None,
    ) -> uuid.UUID | None:
        """Queue an email (with a calendar object whose SEQUENCE is one above the last)."""
        ics = method = None
        sequence = 0
        if calendar is not None:
            registration, event, method = calendar
            sequence = registration.ics_sequence + 1
            ics = invitation_ics(
                Invitation(
                    registration_id=registration.registration_id,
                    sequence=sequence,
                    method=method,
                    title=event.title,
                    starts_at=event.starts_at,
                    ends_at=event.ends_at,
                    attendee_name=domain.display_name(registration.name),
                    attendee_email=registration.email,
                    organiser_email=self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip(),
                    url=registration.manage_url,
                    location=event.venue,
                ),
                stamp=self.clock(),
            )
        rendered = self.renderer.render(request.kind, request.context)
        email_id = await repository.queue_email(
            conn,
            request,
            rendered,
            ics=ics,
            ics_method=method,
            at=self.clock(),
            traceparent=current_traceparent(),
        )
        if email_id is not None:
            if calendar is not None:
                await repository.set_ics_sequence(conn, calendar[0].registration_id, sequence)
            await conn.execute("SELECT pg_notify($1, '')", EMAIL_QUEUED)
        return email_id

    # registrations

    async def on_registration(
        self, conn: asyncpg.Connection, message_type: str, view: RegistrationView, previous: str
    ) -> None:
        await repository.upsert_event(
            conn,
            EventRow(
                event_id=view.event_id,
                revision=view.event_revision,
                status="published",
                title=view.event_title,
                starts_at=view.event_starts_at,
                ends_at=view.event_ends_at,
                venue=None,
                replay_url=None,
                reminder_offsets_hours=DEFAULT_REMINDER_OFFSETS_HOURS,
            ),
            from_view=True,
        )
        await repository.upsert_registration(
            conn,
            registration_id=view.registration_id,
            event_id=view.event_id,
            status=view.status,
            name=view.attendee.name,
            email=view.attendee.email,
            role=view.attendee.role,
            region_code=view.attendee.region_code,
            viewer_id=view.viewer_id,
            manage_url=view.manage_url,
        )
        if (
            message_type in ("registration.confirmed", "registration.waitlisted")
            and view.newsletter_opt_in
        ):
            # The sign-up form's opt-in: still a double opt-in, by its own email.
            await self.subscribe(
                conn,
                email=view.attendee.email,
                name=view.attendee.name,
                role=view.attendee.role,
                region_code=view.attendee.region_code,
                interests=list(view.attendee.profiles),
                source="registration",
            )
        request = domain.registration_email(message_type, view)
        registration = await repository.get_registration(conn, view.registration_id)
        event = await repository.get_event(conn, view.event_id)
        if request is None or registration is None or event is None:
            return
        calendar: tuple[RegistrationRow, EventRow, CalendarMethod] | None = None
        if request.kind in domain.SEAT_EMAILS:
            calendar = (registration, event, "REQUEST")
            await self._plan(conn, registration, event)
        elif request.kind == "registration_cancelled":
            await repository.drop_reminders(conn, registration_id=view.registration_id)
            if event.status == "cancelled":
                return  # the event's cancellation notice already told them (with the CANCEL)
            if previous == "confirmed" and registration.ics_sequence >= 0:
                calendar = (registration, event, "CANCEL")
        await self._queue(conn, request, calendar=calendar)

    async def on_sign_up_repeated(
        self, conn: asyncpg.Connection, view: RegistrationView, notice_id: uuid.UUID
    ) -> None:
        """Someone signed this address up again: tell the address, not whoever typed it."""
        await self._queue(conn, domain.repeated_sign_up_email(view, notice_id))

    async def _plan(
        self, conn: asyncpg.Connection, registration: RegistrationRow, event: EventRow
    ) -> None:
        planned = domain.plan_reminders(event.starts_at, event.reminder_offsets_hours, self.clock())
        await repository.plan_reminders(
            conn, registration.registration_id, event.event_id, event.revision, planned
        )
        await conn.execute("SELECT pg_notify($1, '')", WORK_CHANGED)

    # events

    async def on_event(
        self, conn: asyncpg.Connection, message_type: str, snapshot: EventSnapshot, extra: str = ""
    ) -> None:
        event = EventRow(
            event_id=snapshot.event_id,
            revision=snapshot.revision,
            status=snapshot.status,
            title=snapshot.title,
            starts_at=snapshot.starts_at,
            ends_at=snapshot.ends_at,
            venue=snapshot.venue,
            replay_url=snapshot.replay_url,
            reminder_offsets_hours=snapshot.reminder_offsets_hours,
        )
        if not await repository.upsert_event(conn, event):
            return  # an older revision than we know: nothing it says still holds
        confirmed = await repository.registrations_of(conn, event.event_id, ("confirmed",))
        waitlisted = await repository.registrations_of(conn, event.event_id, ("waitlisted",))
        if message_type == "event.cancelled":
            await repository.drop_reminders(conn, event_id=event.event_id)
            for registration in confirmed + waitlisted:
                has_calendar = registration.ics_sequence >= 0
                await self._queue(
                    conn,
                    self._event_email(
                        "event_cancelled",
                        registration,
                        event,
                        reason=extra,
                        has_calendar=has_calendar,
                    ),
                    calendar=(registration, event, "CANCEL") if has_calendar else None,
                )
        elif message_type == "event.rescheduled":
            for registration in confirmed + waitlisted:
                has_calendar = registration.status == "confirmed"
                await self._queue(
                    conn,
                    self._event_email(
                        "event_rescheduled",
                        registration,
                        event,
                        previous_starts_at=datetime.fromisoformat(extra)
                        if extra
                        else event.starts_at,
                        has_calendar=has_calendar,
                    ),
                    calendar=(registration, event, "REQUEST") if has_calendar else None,
                )
            for registration in confirmed:
                await self._plan(conn, registration, event)
        elif message_type == "event.went_live":
            for registration in confirmed:
                request = self._event_email(
                    "event_live",
                    registration,
                    event,
                    join_url=self.links.join(event.event_id, registration.viewer_id),
                )
                # Once per registration and event: going live twice sends no second email.
                await self._queue(
                    conn, _rekey(request, f"event_live:{registration.registration_id}")
                )
        elif message_type in ("event.published", "event.updated"):
            for registration in confirmed:
                await self._plan(conn, registration, event)

    def _event_email(
        self, kind: EmailKind, registration: RegistrationRow, event: EventRow, **extra: Any
    ) -> EmailRequest:
        return EmailRequest(
            kind=kind,
            dedup_key=f"{kind}:{registration.registration_id}:{event.revision}",
            recipient=registration.email,
            event_id=event.event_id,
            registration_id=registration.registration_id,
            context={
                "name": domain.display_name(registration.name),
                "event_title": event.title,
                "starts_at": event.starts_at,
                "ends_at": event.ends_at,
                "manage_url": registration.manage_url,
                "venue": event.venue,
                **extra,
            },
        )

    # reminders

    async def queue_due_reminders(self, conn: asyncpg.Connection, limit: int = 200) -> int:
        """Queue every reminder due by now (see ``domain``: catch-up and missed)."""
        now = self.clock()
        queued = 0
        for due in await repository.claim_due_reminders(conn, now, limit):
            event, registration = due.event, due.registration
            if (
                event.status == "cancelled"
                or registration.status != "confirmed"
                or due.event_revision != event.revision
            ):
                await repository.settle_reminder(
                    conn, due.registration_id, due.offset_minutes, "dropped", None
                )
                continue
            verdict = domain.catch_up_verdict(due.due_at, event.starts_at, now)
            if verdict != "send":
                await repository.settle_reminder(
                    conn, due.registration_id, due.offset_minutes, "missed", None
                )
                continue
            request = self._event_email(
                "reminder",
                registration,
                event,
                label=domain.reminder_label(due.offset_minutes),
                join_url=self.links.join(event.event_id, registration.viewer_id)
                if event.venue is None
                else None,
            )
            request = _rekey(
                request,
                domain.reminder_dedup_key(
                    registration.registration_id, due.offset_minutes, event.revision
                ),
            )
            rendered = self.renderer.render("reminder", request.context)
            email_id = await repository.queue_email(conn, request, rendered, at=now)
            await repository.settle_reminder(
                conn, due.registration_id, due.offset_minutes, "queued", email_id
            )
            queued += 1
        if queued:
            await conn.execute("SELECT pg_notify($1, '')", EMAIL_QUEUED)
        return queued

    # attendance

    async def on_attendance(
        self,
        conn: asyncpg.Connection,
        event_id: uuid.UUID,
        registration_id: uuid.UUID,
        attended: bool,
        minutes: float,
    ) -> None:
        await repository.record_attendance(conn, registration_id, event_id, attended, minutes)

    async def on_attendance_finalised(self, conn: asyncpg.Connection, event_id: uuid.UUID) -> None:
        """Thank those who attended; offer the replay to the other confirmed registrants
        (only when the event has a replay: no email promising what does not exist)."""
        if not await repository.mark_finalised(conn, event_id):
            return
        event = await repository.get_event(conn, event_id)
        if event is None:
            return
        attended = await repository.attended_ids(conn, event_id)
        for registration in await repository.registrations_of(conn, event_id, ("confirmed",)):
            if registration.registration_id in attended:
                kind: EmailKind = "thank_you"
            elif event.replay_url:
                kind = "replay"
            else:
                continue
            request = self._event_email(kind, registration, event, replay_url=event.replay_url)
            await self._queue(conn, _rekey(request, f"{kind}:{registration.registration_id}"))

    # people

    async def on_person_erased(
        self, conn: asyncpg.Connection, email_sha256: str, registration_ids: list[uuid.UUID]
    ) -> dict[str, int]:
        erased = await repository.erase_person(conn, email_sha256, registration_ids)
        log.info("erased a person: %s", erased)
        return erased

    async def subscribe(
        self,
        conn: asyncpg.Connection,
        *,
        email: str,
        name: str,
        role: str | None,
        region_code: str | None,
        interests: list[str],
        source: str,
    ) -> bool:
        """Record the wish and send the opt-in email; False for an address we cannot use.
        A confirmed subscriber is not mailed again (and nobody learns who is subscribed)."""
        if not domain.is_valid_address(email):
            return False
        subscriber = await repository.add_subscriber(
            conn,
            email=email,
            email_sha256=domain.email_sha256(email),
            name=domain.display_name(name),
            role=role,
            region_code=region_code,
            interests=interests,
            source=source,
        )
        if subscriber.status != "pending":
            return True
        request = EmailRequest(
            kind="subscription_confirmation",
            # One opt-in email per subscriber per day: repeated posts do not flood a mailbox.
            dedup_key=f"subscription_confirmation:{subscriber.id}:{self.clock():%Y-%m-%d}",
            recipient=subscriber.email,
            event_id=None,
            registration_id=None,
            context={
                "name": subscriber.name,
                "confirm_url": self.links.confirm_subscription(subscriber.id),
            },
        )
        await self._queue(conn, request)
        return True


def web_version_of(frozen_html: str) -> str:
    """The personal parts out: a general greeting, no unsubscribe link (it is nobody's)."""
    html = re.sub(r"<!--sto-afmelden-->.*?<!--/sto-afmelden-->", "", frozen_html, flags=re.S)
    return html.replace(NAME_MARK, "lezer")


def _rekey(request: EmailRequest, dedup_key: str) -> EmailRequest:
    return EmailRequest(
        kind=request.kind,
        dedup_key=dedup_key,
        recipient=request.recipient,
        event_id=request.event_id,
        registration_id=request.registration_id,
        context=request.context,
    )


# --- senders ---------------------------------------------------------------------------------


class SenderIdentity:
    """A key held as a PostgreSQL advisory lock for as long as this process lives."""

    def __init__(self) -> None:
        self.key = random.randint(1, 2**31 - 1)

    async def hold(self, conn: asyncpg.Connection) -> None:
        while not await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", SENDER_LOCK_CLASS, self.key
        ):
            self.key = random.randint(1, 2**31 - 1)


@dataclass
class SenderStats:
    sent: int = 0
    temporary_failures: int = 0
    permanent_failures: int = 0
    requeued_after_crash: int = 0


@contextlib.asynccontextmanager
async def _listening(
    pool: asyncpg.Pool,
    channels: list[str],
    wakeup: asyncio.Event,
    identity: SenderIdentity | None = None,
) -> AsyncIterator[asyncpg.Connection]:
    """A connection woken by ``channels`` (and holding a sender's key, if given); its
    listeners are removed before it goes back to the pool, so a stopped loop leaves none."""

    def wake(*_: object) -> None:
        wakeup.set()

    conn: asyncpg.Connection = await pool.acquire()
    try:
        if identity is not None:
            await identity.hold(conn)
        for channel in channels:
            await conn.add_listener(channel, wake)
        yield conn
    finally:
        with contextlib.suppress(*CONNECTION_ERRORS):
            for channel in channels:
                await conn.remove_listener(channel, wake)
        await pool.release(conn)


async def _finish_despite_cancellation(work: Coroutine[Any, Any, None], grace_s: float) -> None:
    """Run ``work`` (one send and the record of its outcome) to its end even when our task is
    cancelled meanwhile, waiting at most ``grace_s``; the cancellation is re-raised after.

    Told to stop again while waiting (``_all_of`` cancels every part once one has stopped),
    it still waits: giving up there let the process close its pool under the send."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while not task.done() and (left := deadline - loop.time()) > 0:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=left)
        raise


async def _all_of(*work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` side by side; when one part fails or we are cancelled, cancel the rest and
    wait until every part has ended (``gather`` returns at the first cancelled part, while
    another may still be finishing a send) before passing the error on."""
    tasks = [asyncio.ensure_future(part) for part in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        raise


async def _wait(wakeup: asyncio.Event, seconds: float) -> None:
    wakeup.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wakeup.wait(), max(0.01, seconds))


class _SenderLoop:
    """What both senders share: the SMTP pool, the claim identity, and a loop that outlives
    PostgreSQL outages (back off, close SMTP, start again)."""

    name: str
    kind: str  # the ``kind`` label of the email series

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        smtp: SmtpPool | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        self._smtp = smtp or SmtpPool(settings)
        self._wakeup = asyncio.Event()
        self.identity = SenderIdentity()
        self.stats = SenderStats()
        _start_email_series(self.kind)

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._run()
            except CONNECTION_ERRORS as exc:
                await backoff.wait(f"{self.name} lost PostgreSQL", exc)
            finally:
                await self._smtp.close()

    async def _run(self) -> None:
        raise NotImplementedError


class EmailSender(_SenderLoop):
    """Sends due transactional emails over the SMTP pool; one outcome message each."""

    name = "email-sender"
    kind = "transactional"

    async def _run(self) -> None:
        async with _listening(self._pool, [EMAIL_QUEUED], self._wakeup, self.identity):
            while True:
                await self.drain()
                await _wait(self._wakeup, 1.0)

    async def drain(self) -> int:
        """Send everything due now (requeueing what dead senders left); how many tried."""
        async with self._pool.acquire() as conn:
            emails, _ = await repository.requeue_orphaned(conn)
        self.stats.requeued_after_crash += emails
        batch = max(10, self._smtp.size * 25)
        tried = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                due = await repository.claim_due(conn, batch, self._clock(), self.identity.key)
            if not due:
                return tried
            tried += len(due)
            # One lane per connection; a person's emails share a lane, so they arrive in the
            # order they were queued ("aangemeld" before "geannuleerd").
            lanes: list[list[QueuedEmail]] = [[] for _ in range(self._smtp.size)]
            for email in due:
                lanes[zlib.crc32(email.recipient.lower().encode()) % len(lanes)].append(email)
            await _all_of(*(self._lane(lane) for lane in lanes if lane))

    async def _lane(self, emails: list[QueuedEmail]) -> None:
        for email in emails:
            await _finish_despite_cancellation(self._send_one(email), self._settings.smtp_timeout_s)

    async def _send_one(self, email: QueuedEmail) -> None:
        """One SMTP send in the trace that queued the email (the sign-up's, for a confirmation),
        its outcome recorded in the same span, so the outcome message continues it too."""
        with _tracer.start_as_current_span(
            f"smtp send {email.kind}",
            context=context_from_traceparent(email.traceparent),
            kind=trace.SpanKind.CLIENT,
            attributes={"email.kind": email.kind, "email.attempt": email.attempts},
        ) as span:
            await self._send_and_record(email, span)

    async def _send_and_record(self, email: QueuedEmail, span: trace.Span) -> None:
        message: Message
        try:
            await self._smtp.send(
                build_message(
                    email_id=email.id,
                    sender=self._settings.mail_from,
                    recipient=email.recipient,
                    subject=email.subject,
                    text=email.body_text,
                    html_body=email.body_html,
                    ics=email.ics,
                    ics_method=email.ics_method,
                )
            )
        except SendFailure as failure:
            permanent = (
                domain.is_permanent(failure.code) or email.attempts >= self._settings.max_attempts
            )
            EMAILS_FAILED.labels("transactional", _flag(permanent)).inc()
            span.set_status(trace.StatusCode.ERROR, str(failure)[:200])
            span.set_attribute("smtp.code", failure.code or 0)
            async with self._pool.acquire() as conn, conn.transaction():
                if permanent:
                    await repository.mark_failed(conn, email.id, str(failure))
                    await _suppress_if_bouncing(conn, email.recipient, self._settings)
                    message = EmailFailed.create(
                        email_id=email.id,
                        kind=email.kind,
                        event_id=email.event_id,
                        registration_id=email.registration_id,
                        permanent=True,
                        error=str(failure)[:500],
                    )
                    await outbox.enqueue(conn, message, schema=self._settings.db_schema)
                    self.stats.permanent_failures += 1
                else:
                    at = domain.next_attempt(self._clock(), email.attempts)
                    await repository.mark_retry(conn, email.id, at, str(failure))
                    self.stats.temporary_failures += 1
            log.info(
                "email %s to be %s: %s", email.id, "dropped" if permanent else "retried", failure
            )
            return
        EMAILS_SENT.labels("transactional").inc()
        async with self._pool.acquire() as conn, conn.transaction():
            await repository.mark_sent(conn, email.id)
            message = EmailSent.create(
                email_id=email.id,
                kind=email.kind,
                event_id=email.event_id,
                registration_id=email.registration_id,
            )
            await outbox.enqueue(conn, message, schema=self._settings.db_schema)
        self.stats.sent += 1


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _start_email_series(kind: str) -> None:
    """Every series exists from the start at 0, so a rate over it is defined before a send."""
    EMAILS_SENT.labels(kind)
    for permanent in (True, False):
        EMAILS_FAILED.labels(kind, _flag(permanent))


async def _suppress_if_bouncing(
    conn: asyncpg.Connection, recipient: str, settings: NotificationsSettings
) -> None:
    if await repository.hard_failures(conn, recipient) >= settings.hard_bounce_limit:
        await repository.suppress(conn, recipient, "hard_bounce", "all")


class MailingSender(_SenderLoop):
    """Sends mailings: small claimed batches, one lane per SMTP connection, each accepted
    recipient marked sent one database round trip later (see the module docstring)."""

    name = "mailing-sender"
    kind = "newsletter"

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        smtp: SmtpPool | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(pool, settings, smtp, clock)
        self._links = Links.of(settings)
        self._composers: dict[uuid.UUID, MailingComposer] = {}
        self._accepted: list[uuid.UUID] = []
        self._accepted_event = asyncio.Event()
        self._in_flight = 0
        self._sent_counter = EMAILS_SENT.labels(self.kind)  # once, not per recipient

    async def _run(self) -> None:
        async with _listening(self._pool, [WORK_CHANGED], self._wakeup, self.identity):
            while True:
                if not await self.drain():
                    await _wait(self._wakeup, 1.0)

    async def drain(self) -> int:
        """Send to every due recipient of every sending mailing; how many were tried."""
        async with self._pool.acquire() as conn:
            _, recipients = await repository.requeue_orphaned(conn)
        self.stats.requeued_after_crash += recipients
        tried = 0
        batches: asyncio.Queue[ClaimedRecipient | None] = asyncio.Queue(maxsize=self._smtp.size * 4)
        done_claiming = asyncio.Event()

        async def claimer() -> None:
            nonlocal tried
            try:
                while True:
                    async with self._pool.acquire() as conn, conn.transaction():
                        claimed = await repository.claim_recipients(
                            conn, self._settings.mailing_claim_batch, self._clock(),
                            self.identity.key,
                        )  # fmt: skip
                    if not claimed:
                        break
                    tried += len(claimed)
                    for recipient in claimed:
                        await batches.put(recipient)
            finally:
                done_claiming.set()
            # Only when claiming ran out: after a cancellation the lanes are gone, and a full
            # queue would never take the end marks.
            for _ in range(self._smtp.size):
                await batches.put(None)

        async def lane() -> None:
            while (recipient := await batches.get()) is not None:
                await _finish_despite_cancellation(
                    self._send_one(recipient), self._settings.smtp_timeout_s
                )

        marker_conn: asyncpg.Connection = await self._pool.acquire()
        try:
            await marker_conn.execute("SET synchronous_commit = off")
            marker = asyncio.create_task(self._mark_accepted(marker_conn, done_claiming))
            try:
                await _all_of(claimer(), *(lane() for _ in range(self._smtp.size)))
            finally:
                self._accepted_event.set()
                await marker
        finally:
            await marker_conn.execute("RESET synchronous_commit")
            await self._pool.release(marker_conn)
        return tried

    async def _mark_accepted(self, conn: asyncpg.Connection, done: asyncio.Event) -> None:
        """Flush accepted ids: one UPDATE as soon as the previous one returned."""
        while True:
            if not self._accepted:
                if done.is_set() and self._lanes_idle():
                    return
                # Woken by each acceptance, and once more when every lane has finished.
                self._accepted_event.clear()
                await self._accepted_event.wait()
                continue
            if self._settings.mailing_mark_interval_ms > 0 and not done.is_set():
                await asyncio.sleep(self._settings.mailing_mark_interval_ms / 1000)
            ids, self._accepted = self._accepted, []
            await repository.mark_recipients_sent(conn, ids)
            self.stats.sent += len(ids)

    def _lanes_idle(self) -> bool:
        return self._in_flight == 0

    async def _composer(self, mailing_id: uuid.UUID) -> MailingComposer:
        composer = self._composers.get(mailing_id)
        if composer is None:
            async with self._pool.acquire() as conn:
                mailing = await repository.get_mailing(conn, mailing_id)
            if mailing is None or mailing.frozen_html is None or mailing.frozen_text is None:
                raise MailingRefused(f"mailing {mailing_id} has no frozen content")
            composer = MailingComposer(
                mailing_id=mailing.id,
                sender=self._settings.mail_from,
                rendered=RenderedEmail(mailing.subject, mailing.frozen_text, mailing.frozen_html),
            )
            if len(self._composers) > 20:
                self._composers.clear()
            self._composers[mailing_id] = composer
        return composer

    async def _send_one(self, recipient: ClaimedRecipient) -> None:
        self._in_flight += 1
        try:
            composer = await self._composer(recipient.mailing_id)
            data = composer.compose(
                recipient.id,
                recipient.email,
                recipient.name,
                self._links.unsubscribe(recipient.id),
            )
            try:
                await self._smtp.send_raw(composer.sender_address, recipient.email, data)
            except SendFailure as failure:
                await self._failed(recipient, failure)
                return
            self._sent_counter.inc()
            self._accepted.append(recipient.id)
            self._accepted_event.set()
        finally:
            self._in_flight -= 1

    async def _failed(self, recipient: ClaimedRecipient, failure: SendFailure) -> None:
        permanent = (
            domain.is_permanent(failure.code) or recipient.attempts >= self._settings.max_attempts
        )
        EMAILS_FAILED.labels("newsletter", _flag(permanent)).inc()
        async with self._pool.acquire() as conn, conn.transaction():
            if permanent:
                await repository.recipient_failed(conn, recipient.id, str(failure))
                await _suppress_if_bouncing(conn, recipient.email, self._settings)
                self.stats.permanent_failures += 1
            else:
                at = domain.next_attempt(self._clock(), recipient.attempts)
                await repository.recipient_retry(conn, recipient.id, at, str(failure))
                self.stats.temporary_failures += 1


# --- schedulers and mailings -----------------------------------------------------------------


class Scheduler:
    """Queues due reminders, starts due mailings and closes finished ones."""

    name = "scheduler"

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        service: NotificationsService,
        mailings: MailingService,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._service = service
        self._mailings = mailings
        self._clock = clock
        self._wakeup = asyncio.Event()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with _listening(self._pool, [WORK_CHANGED], self._wakeup):
                    while True:
                        await self.tick()
                        await _wait(self._wakeup, await self._seconds_to_next())
            except CONNECTION_ERRORS as exc:
                await backoff.wait("scheduler lost PostgreSQL", exc)

    async def _seconds_to_next(self) -> float:
        async with self._pool.acquire() as conn:
            moments = [
                at
                for at in (
                    await repository.next_reminder_at(conn),
                    await repository.next_mailing_at(conn),
                )
                if at is not None
            ]
        poll = self._settings.scheduler_poll_s
        if not moments:
            return poll
        return min(poll, (min(moments) - self._clock()).total_seconds())

    async def tick(self) -> dict[str, int]:
        """One round: everything due by the clock's now. Safe to run from several workers."""
        reminders = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                queued = await self._service.queue_due_reminders(conn)
            reminders += queued
            if queued == 0:
                break
        started = await self._mailings.start_due()
        closed = await self._mailings.close_finished()
        return {"reminders": reminders, "mailings_started": started, "mailings_closed": closed}


@dataclass(frozen=True)
class MailingDraft:
    subject: str
    body: str
    audience: Audience
    include_events: bool

    def problems(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not self.subject.strip():
            problems["subject"] = "Geef de mailing een onderwerp."
        elif len(self.subject) > 200:
            problems["subject"] = "Houd het onderwerp korter dan 200 tekens."
        if not self.body.strip():
            problems["body"] = "Schrijf de tekst van de mailing."
        audience = self.audience.problems()
        if audience:
            problems["audience"] = audience[0]
        return problems


class DraftInvalid(DomainError):
    status = 422

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()), problems=problems)


class MailingUnknown(DomainError):
    status = 404
    message = "Deze mailing bestaat niet"


class MailingService:
    """Drafting, previewing, test-sending, scheduling and following a mailing."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        events: EventsDirectory | None = None,
        smtp: SmtpPool | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        self.links = Links.of(settings)
        self._events = events or EventsDirectory(
            EventsClient(settings.events_api_url), PublicUrls(settings.public_base_url)
        )
        self._smtp = smtp
        self._renderer = MailingRenderer()

    async def create(self, draft: MailingDraft, organiser: str) -> uuid.UUID:
        problems = draft.problems()
        if problems:
            raise DraftInvalid(problems)
        async with self._pool.acquire() as conn:
            return await repository.create_mailing(
                conn,
                subject=draft.subject.strip(),
                body=draft.body,
                audience=draft.audience,
                include_events=draft.include_events,
                created_by=organiser,
            )

    async def update(self, mailing_id: uuid.UUID, draft: MailingDraft) -> None:
        problems = draft.problems()
        if problems:
            raise DraftInvalid(problems)
        async with self._pool.acquire() as conn, conn.transaction():
            mailing = await self._get(conn, mailing_id, for_update=True)
            domain.check_editable(mailing.status)
            await repository.update_mailing(
                conn,
                mailing_id,
                subject=draft.subject.strip(),
                body=draft.body,
                audience=draft.audience,
                include_events=draft.include_events,
            )

    async def get(self, mailing_id: uuid.UUID) -> repository.MailingRow:
        async with self._pool.acquire() as conn:
            return await self._get(conn, mailing_id)

    async def all(self) -> list[repository.MailingRow]:
        async with self._pool.acquire() as conn:
            return await repository.list_mailings(conn)

    async def subscriber_counts(self) -> dict[str, int]:
        async with self._pool.acquire() as conn:
            return await repository.count_subscribers(conn)

    @staticmethod
    async def _get(
        conn: asyncpg.Connection, mailing_id: uuid.UUID, *, for_update: bool = False
    ) -> repository.MailingRow:
        mailing = await repository.get_mailing(conn, mailing_id, for_update=for_update)
        if mailing is None:
            raise MailingUnknown()
        return mailing

    async def render(self, mailing: repository.MailingRow, *, personal: bool) -> RenderedEmail:
        """The mailing as it would go out now (upcoming events fetched live)."""
        now = self._clock()
        events = await self._events.upcoming(now) if mailing.include_events else []
        return self._renderer.render(
            subject=mailing.subject,
            body=mailing.body,
            date=mailing.started_at or now,
            web_url=self.links.web_version(mailing.id),
            events=events,
            personal=personal,
        )

    async def web_version(self, mailing_id: uuid.UUID) -> str:
        """The frozen content of a sent (or sending) mailing, without anything personal."""
        mailing = await self.get(mailing_id)
        if mailing.status not in ("sending", "sent") or mailing.frozen_html is None:
            raise MailingUnknown()
        return web_version_of(mailing.frozen_html)

    async def audience_size(self, mailing_id: uuid.UUID) -> int:
        """How many would receive it if it went now (a dry run, rolled back)."""
        async with self._pool.acquire() as conn:
            mailing = await self._get(conn, mailing_id)
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(
                    "INSERT INTO mailings (id, subject, body, audience, status, created_by)"
                    " VALUES ($1, '', '', '{}', 'draft', 'dry-run')",
                    dry := uuid.uuid4(),
                )
                await repository.materialise_recipients(
                    conn, dry, Audience.from_json(mailing.audience)
                )
                progress = await repository.mailing_progress(conn, dry)
            finally:
                await tr.rollback()
        return progress["queued"]

    async def send_test(self, mailing_id: uuid.UUID, address: str) -> None:
        """One copy to an organiser's address, marked as a test, outside the mailing."""
        if not domain.is_valid_address(address):
            raise DraftInvalid({"test_address": "Vul een geldig e-mailadres in."})
        async with self._pool.acquire() as conn:
            mailing = await self._get(conn, mailing_id)
            if await repository.is_suppressed(conn, address, newsletter=True):
                raise DraftInvalid({"test_address": "Dit adres staat op de lijst van afmeldingen."})
        rendered = await self.render(mailing, personal=True)
        rendered = RenderedEmail(f"[TEST] {rendered.subject}", rendered.text, rendered.html)
        composer = MailingComposer(
            mailing_id=mailing.id, sender=self._settings.mail_from, rendered=rendered
        )
        test_id = uuid.uuid4()
        data = composer.compose(test_id, address, "", self.links.unsubscribe(test_id))
        smtp = self._smtp or SmtpPool(self._settings)
        try:
            await smtp.send_raw(composer.sender_address, address, data)
        finally:
            if self._smtp is None:
                await smtp.close()

    async def schedule(self, mailing_id: uuid.UUID, at: datetime | None) -> None:
        """Send at ``at`` (UTC stored), or now when None."""
        now = self._clock()
        when = at or now
        async with self._pool.acquire() as conn, conn.transaction():
            mailing = await self._get(conn, mailing_id, for_update=True)
            domain.check_schedule(mailing.status, when, now)
            await repository.set_mailing_schedule(conn, mailing_id, "scheduled", when)
            await conn.execute("SELECT pg_notify($1, '')", WORK_CHANGED)

    async def unschedule(self, mailing_id: uuid.UUID) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            mailing = await self._get(conn, mailing_id, for_update=True)
            domain.check_editable(mailing.status)
            await repository.set_mailing_schedule(conn, mailing_id, "draft", None)

    async def progress(self, mailing_id: uuid.UUID) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            mailing = await self._get(conn, mailing_id)
            counts = await repository.mailing_progress(conn, mailing_id)
        return {
            "id": str(mailing.id),
            "status": mailing.status,
            "scheduled_at": mailing.scheduled_at.isoformat() if mailing.scheduled_at else None,
            "started_at": mailing.started_at.isoformat() if mailing.started_at else None,
            "finished_at": mailing.finished_at.isoformat() if mailing.finished_at else None,
            "recipients": sum(counts.values()),
            # 'sending' is claimed, not yet answered: still queued as far as anyone can tell.
            "queued": counts["queued"] + counts["sending"],
            "sent": counts["sent"],
            "failed": counts["failed"],
            "suppressed": counts["suppressed"],
        }

    async def start_due(self) -> int:
        """Freeze content and write every recipient row of each mailing that is due."""
        started = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                mailing = await repository.claim_due_mailing(conn, self._clock())
                if mailing is None:
                    return started
                try:
                    rendered = await self.render(mailing, personal=True)
                except EventsUnavailable as exc:
                    # It promises the agenda: it waits for the events service (next tick).
                    log.warning("mailing %s waits for the agenda: %s", mailing.id, exc)
                    return started
                count = await repository.materialise_recipients(
                    conn, mailing.id, Audience.from_json(mailing.audience)
                )
                await repository.start_mailing(
                    conn, mailing.id, rendered.html, rendered.text, self._clock()
                )
                await conn.execute("SELECT pg_notify($1, '')", WORK_CHANGED)
            log.info("mailing %s started: %d recipients", mailing.id, count)
            started += 1

    async def close_finished(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            finished = await repository.finished_mailings(conn)
            now = self._clock()
            for mailing in finished:
                counts = await repository.mailing_progress(conn, mailing.id)
                await repository.close_mailing(conn, mailing.id, now)
                message = MailingFinished.create(
                    mailing_id=mailing.id,
                    recipients=sum(counts.values()),
                    sent=counts["sent"],
                    failed=counts["failed"],
                    suppressed=counts["suppressed"],
                    started_at=mailing.started_at or now,
                    finished_at=now,
                )
                await outbox.enqueue(conn, message, schema=self._settings.db_schema)
        return len(finished)

    def signed_by_us(self, purpose: str, token: str) -> bool:
        """The token is one of our links for ``purpose`` (a page may show its button)."""
        return self._subject_of(purpose, token) is not None

    def _subject_of(self, purpose: str, token: str) -> uuid.UUID | None:
        """Whom a personal link in our email is for, or None if we did not sign it."""
        return links.verify(self._settings.link_key(), purpose, token)

    async def unsubscribe(self, token: str) -> bool:
        """One-click or by button; a second time changes nothing and is no error."""
        recipient_id = self._subject_of(UNSUBSCRIBE, token)
        if recipient_id is None:
            return False
        async with self._pool.acquire() as conn, conn.transaction():
            email = await repository.recipient_email(conn, recipient_id)
            if email is None:
                return True  # a test copy, or erased since: nothing to unsubscribe
            await repository.suppress(conn, email, "unsubscribed", "newsletters")
            await repository.unsubscribe_address(conn, email)
        return True

    async def confirm_subscription(self, token: str) -> bool:
        subscriber_id = self._subject_of(NEWSLETTER_CONFIRM, token)
        if subscriber_id is None:
            return False
        async with self._pool.acquire() as conn, conn.transaction():
            return await repository.confirm_subscriber(conn, subscriber_id) is not None

    async def subscribe(
        self,
        service: NotificationsService,
        *,
        email: str,
        name: str,
        role: str | None,
        region_code: str | None,
        interests: list[str],
        source: str,
    ) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            return await service.subscribe(
                conn,
                email=email.strip(),
                name=name,
                role=role,
                region_code=region_code,
                interests=interests,
                source=source,
            )
