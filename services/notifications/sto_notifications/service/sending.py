"""Sending: the transactional e-mail sender and the mailing sender, over one SMTP pool.

Every email is first written to PostgreSQL under a unique key, then sent, then its outcome is
recorded: ``emails`` (one row per transactional email, UNIQUE ``dedup_key``) and
``mailing_recipients`` (one row per person on a mailing, UNIQUE ``(mailing, email)``).

The send/crash window
---------------------
SMTP has no transaction we can join: the server accepts a message (``250`` after the final
dot) and only then can we write "sent". A process killed between the two leaves a row that
was delivered but not recorded, and it is sent again. No design removes that window; this one
keeps it as small as the protocol allows and knows exactly which rows fall in it:

1. A sender claims rows (``status = 'sending'``, ``claimed_by`` = its key) and holds the key
   as a PostgreSQL advisory lock (``claims.py``): a killed process loses its session and with
   it the lock, so its rows are recognisably orphaned and another sender requeues them
   (after ``orphan_grace_s``, in case that sender is alive and only its session dropped).
2. Each connection (lane) hands one message at a time to SMTP, and **does not send the next
   one's content before the previous one's "sent" is committed**. The mailing sender sends
   the next envelope (MAIL, RCPT) while that mark is written, and groups the marks of all
   lanes into one UPDATE (whoever's id is pending writes every pending id, so there is no
   timer to wait for); the e-mail sender records each with its outcome message.
   Before the final dot a crash is harmless: the server discards an unfinished DATA.
3. **The bound: after a SIGKILL at most one message per SMTP connection is delivered twice**
   (``SMTP_CONNECTIONS`` per killed process, 4 by default): the one whose final dot was sent
   and whose ``250`` or "sent" had not come back yet. It is resent with the same
   ``Message-ID`` (derived from the row id), so mail systems can recognise the repeat.
4. A stop is not a crash: on SIGTERM each send under way finishes and is recorded before the
   process exits (``finish_despite_cancellation``), and claimed rows not yet handed to SMTP go
   back to the queue at once (``_give_back_claims``): **0 duplicates**, no wait. The same
   holds when PostgreSQL goes away under a sender: it sends nothing more, remembers what SMTP
   accepted but it could not record, and records that before anything of its own is requeued
   (``_record_unrecorded``).

Mailing marks are written with ``synchronous_commit = off``: a killed *worker* loses nothing
(PostgreSQL still commits what it received), and only a crash of PostgreSQL itself could
lose the last fraction of a second of marks, which would then be resent like (3).

Bounces: a refusal is classified hard or soft (``bounces.py``) and counted per person; past
the thresholds the person is suppressed (``_bounced``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import zlib
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from opentelemetry import trace

from sto_notifications import bounces, domain, repository
from sto_notifications.adapters.mime import MailingComposer, build_message
from sto_notifications.adapters.rendering import RenderedEmail
from sto_notifications.adapters.smtp import SendFailure, SmtpPool
from sto_notifications.config import NotificationsSettings
from sto_notifications.domain import MailingRefused
from sto_notifications.repository import ClaimedRecipient, QueuedEmail
from sto_notifications.repository import sending as queue
from sto_notifications.service.claims import Orphans, SenderIdentity
from sto_notifications.service.lanes import GroupedMarks, all_of, finish_despite_cancellation
from sto_notifications.service.wakeups import (
    EMAIL_QUEUED,
    WORK_CHANGED,
    listening,
    woken_or_after,
)
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.notifications import EmailFailed, EmailSent
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.links import PersonalLinks
from stolive_shared.messaging import outbox
from stolive_shared.metrics import EMAILS_FAILED, EMAILS_SENT
from stolive_shared.privacy import person_key
from stolive_shared.privacy.redaction import redact
from stolive_shared.retry import Backoff
from stolive_shared.telemetry import context_from_traceparent
from stolive_shared.urls import PublicUrls

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)


@dataclass
class SenderStats:
    sent: int = 0
    temporary_failures: int = 0
    permanent_failures: int = 0
    requeued_after_crash: int = 0


class _SenderLoop:
    """What both senders share: the SMTP pool, the claim identity, a loop that outlives
    PostgreSQL outages (back off, close SMTP, start again with a new key), and bounces."""

    name: str
    kind: str  # the ``kind`` label of the email series
    channel: str  # the NOTIFY channel that wakes it

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
        self._orphans = Orphans(settings.orphan_grace_s)
        self._bounce_policy = bounces.BouncePolicy(
            settings.hard_bounce_limit,
            settings.soft_bounce_limit,
            timedelta(days=settings.bounce_window_days),
        )
        self.stats = SenderStats()
        # E-mails SMTP accepted while PostgreSQL could not be told (the e-mail sender's).
        self._unrecorded: list[QueuedEmail] = []
        _start_email_series(self.kind)

    def _key(self, email: str) -> str:
        return person_key(self._settings.link_key(), email)

    async def run(self) -> None:
        backoff = Backoff()
        try:
            while True:
                try:
                    await self._run()
                except CONNECTION_ERRORS as exc:
                    await backoff.wait(f"{self.name} lost PostgreSQL", exc)
                finally:
                    await self._smtp.close()
        finally:
            await self._give_back_claims()

    async def _give_back_claims(self) -> None:
        """Stopped (every send under way has ended): what we claimed and did not hand to SMTP
        goes back to the queue now, so the next sender need not wait out the grace."""
        keys = [*self.identity.previous, self.identity.key]
        with contextlib.suppress(*CONNECTION_ERRORS, TimeoutError):
            async with asyncio.timeout(5), self._pool.acquire() as conn:
                await self._record_unrecorded(conn)
                await queue.requeue_orphaned(conn, keys)

    async def _run(self) -> None:
        """Work while the session holding our key lives; when it goes, stop (letting the sends
        under way finish) and raise, so ``run`` starts again on a new session and key."""
        async with listening(self._pool, [self.channel], self._wakeup, self.identity.hold):
            await all_of(self.identity.watch(), self._work())

    async def _work(self) -> None:
        raise NotImplementedError

    async def _record_unrecorded(self, conn: asyncpg.Connection) -> None:
        """Record what SMTP accepted while PostgreSQL could not be told."""
        raise NotImplementedError

    async def _take_back_orphans(self) -> tuple[int, int]:
        """Requeue the rows of dead senders that are due (claims.py): ours at once, once what
        we delivered is recorded; another's after the grace. (emails, recipients) requeued."""
        async with self._pool.acquire() as conn:
            await self._record_unrecorded(conn)
            dead = await queue.orphaned_claimers(conn)
            due = self._orphans.due(dead, self.identity.previous)
            self.identity.previous &= dead - set(due)
            if not due:
                return 0, 0
            requeued = await queue.requeue_orphaned(conn, due)
        log.info("%s requeued %s e-mails, %s recipients of dead senders", self.name, *requeued)
        return requeued

    async def _bounced(
        self, conn: asyncpg.Connection, person: str, failure: SendFailure, last_attempt: bool
    ) -> None:
        """Count a bounce, if the refusal is one; past the thresholds, suppress the person."""
        kind = bounces.classify(failure.code, last_attempt=last_attempt)
        if kind is None:
            return
        now = self._clock()
        hard, soft = await queue.record_bounce(
            conn, person, kind, failure.code, self.kind, now, now - self._bounce_policy.window
        )
        if self._bounce_policy.suppresses(hard, soft):
            await repository.suppress(conn, person, f"{kind}_bounce", "all")


class EmailSender(_SenderLoop):
    """Sends due transactional emails over the SMTP pool; one outcome message each."""

    name = "email-sender"
    kind = "transactional"
    channel = EMAIL_QUEUED

    async def _work(self) -> None:
        while True:
            await self.drain()
            await woken_or_after(self._wakeup, 1.0)

    async def drain(self) -> int:
        """Send everything due now (requeueing what dead senders left); how many tried."""
        emails, _ = await self._take_back_orphans()
        self.stats.requeued_after_crash += emails
        batch = max(10, self._smtp.size * 25)
        tried = 0
        while True:
            self.identity.check()
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
            await all_of(*(self._lane(lane) for lane in lanes if lane))

    async def _lane(self, emails: list[QueuedEmail]) -> None:
        for email in emails:
            await finish_despite_cancellation(self._send_one(email), self._settings.smtp_timeout_s)

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
        self.identity.check()  # never hand SMTP a row that may no longer be ours
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
            span.set_status(trace.StatusCode.ERROR, redact(str(failure))[:200])
            span.set_attribute("smtp.code", failure.code or 0)
            await self._record_failure(email, failure)
            return
        EMAILS_SENT.labels("transactional").inc()
        try:
            await self._record_sent(email)
        except CONNECTION_ERRORS:
            self._unrecorded.append(email)  # delivered: record it later, never send it again
            raise

    async def _record_sent(self, email: QueuedEmail) -> None:
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

    async def _record_unrecorded(self, conn: asyncpg.Connection) -> None:  # noqa: ARG002
        while self._unrecorded:
            await self._record_sent(self._unrecorded[0])
            self._unrecorded.pop(0)

    async def _record_failure(self, email: QueuedEmail, failure: SendFailure) -> None:
        permanent = (
            domain.is_permanent(failure.code) or email.attempts >= self._settings.max_attempts
        )
        EMAILS_FAILED.labels("transactional", _flag(permanent)).inc()
        message: Message
        async with self._pool.acquire() as conn, conn.transaction():
            if permanent:
                await repository.mark_failed(conn, email.id, redact(str(failure)))
                person = email.recipient_key or self._key(email.recipient)
                await self._bounced(conn, person, failure, last_attempt=True)
                message = EmailFailed.create(
                    email_id=email.id,
                    kind=email.kind,
                    event_id=email.event_id,
                    registration_id=email.registration_id,
                    permanent=True,
                    error=redact(str(failure))[:500],
                )
                await outbox.enqueue(conn, message, schema=self._settings.db_schema)
                self.stats.permanent_failures += 1
            else:
                at = domain.next_attempt(self._clock(), email.attempts)
                await repository.mark_retry(conn, email.id, at, redact(str(failure)))
                self.stats.temporary_failures += 1
        log.info("email %s to be %s: %s", email.id, "dropped" if permanent else "retried", failure)


async def _all_done(tasks: list[asyncio.Task[None]]) -> None:
    if tasks:
        await asyncio.gather(*tasks)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _start_email_series(kind: str) -> None:
    """Every series exists from the start at 0, so a rate over it is defined before a send."""
    EMAILS_SENT.labels(kind)
    for permanent in (True, False):
        EMAILS_FAILED.labels(kind, _flag(permanent))


class MailingSender(_SenderLoop):
    """Sends mailings: small claimed batches, one lane per SMTP connection, each accepted
    recipient marked sent before its lane sends again (see the module docstring)."""

    name = "mailing-sender"
    kind = "newsletter"
    channel = WORK_CHANGED

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: NotificationsSettings,
        smtp: SmtpPool | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(pool, settings, smtp, clock)
        self._links = PersonalLinks(settings.link_key(), PublicUrls(settings.public_base_url))
        self._composers: dict[uuid.UUID, MailingComposer] = {}
        self._marker: asyncpg.Connection | None = None
        self._marks = GroupedMarks(self._write_marks)
        self._sent_counter = EMAILS_SENT.labels(self.kind)  # once, not per recipient

    async def _work(self) -> None:
        while True:
            if not await self.drain():
                await woken_or_after(self._wakeup, 1.0)

    async def drain(self) -> int:
        """Send to every due recipient of every sending mailing; how many were tried."""
        _, recipients = await self._take_back_orphans()
        self.stats.requeued_after_crash += recipients
        tried = 0
        batches: asyncio.Queue[ClaimedRecipient | None] = asyncio.Queue(maxsize=self._smtp.size * 4)

        async def claimer() -> None:
            nonlocal tried
            while True:
                self.identity.check()
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
            # Only when claiming ran out: after a cancellation the lanes are gone, and a full
            # queue would never take the end marks.
            for _ in range(self._smtp.size):
                await batches.put(None)

        async def lane() -> None:
            marks: list[asyncio.Task[None]] = []  # this lane's; the newest may be unwritten
            try:
                while (recipient := await batches.get()) is not None:
                    await finish_despite_cancellation(
                        self._send_one(recipient, marks), self._settings.smtp_timeout_s
                    )
            finally:
                await finish_despite_cancellation(_all_done(marks), self._settings.smtp_timeout_s)

        self._marker = await self._pool.acquire()
        try:
            await self._marker.execute("SET synchronous_commit = off")
            await all_of(claimer(), *(lane() for _ in range(self._smtp.size)))
        finally:
            marker, self._marker = self._marker, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                await marker.execute("RESET synchronous_commit")
            await self._pool.release(marker)
        return tried

    async def _write_marks(self, ids: list[uuid.UUID]) -> None:
        assert self._marker is not None, "marks are written during a drain"
        await queue.mark_recipients_sent(self._marker, ids)
        self.stats.sent += len(ids)

    async def _record_unrecorded(self, conn: asyncpg.Connection) -> None:
        if self._marks.unwritten:
            await queue.mark_recipients_sent(conn, self._marks.unwritten)
            self.stats.sent += len(self._marks.unwritten)
            self._marks.unwritten = []

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

    async def _send_one(self, recipient: ClaimedRecipient, marks: list[asyncio.Task[None]]) -> None:
        """Send, and start writing the mark: the lane's next message has its envelope sent
        meanwhile, but not its content: that waits until this mark is written (``ready``)."""
        previous = marks[-1] if marks else None

        async def ready() -> None:
            if previous is not None:
                await previous

        composer = await self._composer(recipient.mailing_id)
        data = composer.compose(
            recipient.id,
            recipient.email,
            recipient.name,
            self._links.unsubscribe(recipient.id),
        )
        self.identity.check()  # never hand SMTP a row that may no longer be ours
        try:
            await self._smtp.send_raw(
                composer.sender_address, recipient.email, data, before_data=ready
            )
        except SendFailure as failure:
            await ready()
            await self._failed(recipient, failure)
            return
        self._sent_counter.inc()
        marks[:] = [asyncio.create_task(self._marks.record(recipient.id))]

    async def _failed(self, recipient: ClaimedRecipient, failure: SendFailure) -> None:
        permanent = (
            domain.is_permanent(failure.code) or recipient.attempts >= self._settings.max_attempts
        )
        EMAILS_FAILED.labels("newsletter", _flag(permanent)).inc()
        async with self._pool.acquire() as conn, conn.transaction():
            if permanent:
                await repository.recipient_failed(conn, recipient.id, redact(str(failure)))
                person = recipient.person_key or self._key(recipient.email)
                await self._bounced(conn, person, failure, last_attempt=True)
                self.stats.permanent_failures += 1
            else:
                at = domain.next_attempt(self._clock(), recipient.attempts)
                await repository.recipient_retry(conn, recipient.id, at, redact(str(failure)))
                self.stats.temporary_failures += 1
