"""Sending: the transactional e-mail sender and the mailing sender, over one SMTP pool.

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
import uuid
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
from opentelemetry import trace

from sto_notifications import domain, repository
from sto_notifications.adapters.mime import MailingComposer, build_message
from sto_notifications.adapters.rendering import RenderedEmail
from sto_notifications.adapters.smtp import SendFailure, SmtpPool
from sto_notifications.config import NotificationsSettings
from sto_notifications.domain import MailingRefused
from sto_notifications.repository import SENDER_LOCK_CLASS, ClaimedRecipient, QueuedEmail
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

    def _key(self, email: str) -> str:
        return person_key(self._settings.link_key(), email)

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
        async with listening(self._pool, [EMAIL_QUEUED], self._wakeup, self.identity.hold):
            while True:
                await self.drain()
                await woken_or_after(self._wakeup, 1.0)

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
            span.set_status(trace.StatusCode.ERROR, redact(str(failure))[:200])
            span.set_attribute("smtp.code", failure.code or 0)
            async with self._pool.acquire() as conn, conn.transaction():
                if permanent:
                    await repository.mark_failed(conn, email.id, redact(str(failure)))
                    await _suppress_if_bouncing(
                        conn, email.recipient_key or self._key(email.recipient), self._settings
                    )
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
    conn: asyncpg.Connection, person: str, settings: NotificationsSettings
) -> None:
    """After enough hard bounces the person is suppressed, by keyed hash only."""
    if await repository.hard_failures(conn, person) >= settings.hard_bounce_limit:
        await repository.suppress(conn, person, "hard_bounce", "all")


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
        self._links = PersonalLinks(settings.link_key(), PublicUrls(settings.public_base_url))
        self._composers: dict[uuid.UUID, MailingComposer] = {}
        self._accepted: list[uuid.UUID] = []
        self._accepted_event = asyncio.Event()
        self._in_flight = 0
        self._sent_counter = EMAILS_SENT.labels(self.kind)  # once, not per recipient

    async def _run(self) -> None:
        async with listening(self._pool, [WORK_CHANGED], self._wakeup, self.identity.hold):
            while True:
                if not await self.drain():
                    await woken_or_after(self._wakeup, 1.0)

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
                await repository.recipient_failed(conn, recipient.id, redact(str(failure)))
                await _suppress_if_bouncing(
                    conn, recipient.person_key or self._key(recipient.email), self._settings
                )
                self.stats.permanent_failures += 1
            else:
                at = domain.next_attempt(self._clock(), recipient.attempts)
                await repository.recipient_retry(conn, recipient.id, at, redact(str(failure)))
                self.stats.temporary_failures += 1
