"""Mailings, as organisers make them: drafting, previewing, test-sending, scheduling and
following one; starting it when it falls due and closing it when all is sent. Also the
newsletter's own links: confirming a subscription and unsubscribing."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sto_notifications import domain, repository
from sto_notifications.adapters.agenda import EventsDirectory, EventsUnavailable
from sto_notifications.adapters.mime import MailingComposer
from sto_notifications.adapters.rendering import NAME_MARK, MailingRenderer, RenderedEmail
from sto_notifications.adapters.smtp import SmtpPool
from sto_notifications.config import NotificationsSettings
from sto_notifications.domain import Audience, NewsletterWish
from sto_notifications.service.reactions import NotificationsService
from sto_notifications.service.wakeups import WORK_CHANGED, notify
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.notifications import MailingFinished
from stolive_shared.errors import DomainError
from stolive_shared.events_client import EventsClient
from stolive_shared.links import NEWSLETTER_CONFIRMATION, UNSUBSCRIBE, PersonalLinks
from stolive_shared.messaging import outbox
from stolive_shared.privacy import person_key
from stolive_shared.urls import PublicUrls

log = logging.getLogger(__name__)

# Writes the audit row of an organiser's change to a mailing, in the change's own transaction.
Recorder = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[None]]


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
        self.urls = PublicUrls(settings.public_base_url)
        self.links = PersonalLinks(settings.link_key(), self.urls)
        self._events = events or EventsDirectory(EventsClient(settings.events_api_url), self.urls)
        self._smtp = smtp
        self._renderer = MailingRenderer()

    async def create(
        self, draft: MailingDraft, organiser: str, record: Recorder | None = None
    ) -> uuid.UUID:
        """A new draft by ``organiser`` (their address)."""
        problems = draft.problems()
        if problems:
            raise DraftInvalid(problems)
        async with self._pool.acquire() as conn, conn.transaction():
            mailing_id = await repository.create_mailing(
                conn,
                subject=draft.subject.strip(),
                body=draft.body,
                audience=draft.audience,
                include_events=draft.include_events,
                created_by=organiser,
            )
            if record is not None:
                await record(conn, mailing_id)
            return mailing_id

    async def update(
        self, mailing_id: uuid.UUID, draft: MailingDraft, record: Recorder | None = None
    ) -> None:
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
            if record is not None:
                await record(conn, mailing_id)

    async def get(self, mailing_id: uuid.UUID) -> repository.MailingRow:
        async with self._pool.acquire() as conn:
            return await self._get(conn, mailing_id)

    async def all(
        self, scope: repository.MailingScope | None = None
    ) -> list[repository.MailingRow]:
        """Newest first; with ``scope`` (a regional leader's), only the mailings in it."""
        async with self._pool.acquire() as conn:
            return await repository.list_mailings(conn, scope=scope)

    async def event_choices(
        self, only: frozenset[uuid.UUID] | None
    ) -> list[repository.EventChoice]:
        """The events a mailing form offers (``only`` those in the organiser's scope)."""
        async with self._pool.acquire() as conn:
            return await repository.event_choices(conn, only)

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
            web_url=self.urls.mailing_online(mailing.id),
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
            key = person_key(self.links.secret, address)
            if await repository.is_suppressed(conn, key, newsletter=True):
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

    async def schedule(
        self, mailing_id: uuid.UUID, at: datetime | None, record: Recorder | None = None
    ) -> None:
        """Send at ``at`` (UTC stored), or now when None."""
        now = self._clock()
        when = at or now
        async with self._pool.acquire() as conn, conn.transaction():
            mailing = await self._get(conn, mailing_id, for_update=True)
            domain.check_schedule(mailing.status, when, now)
            await repository.set_mailing_schedule(conn, mailing_id, "scheduled", when)
            if record is not None:
                await record(conn, mailing_id)
            await notify(conn, WORK_CHANGED)

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
        """Freeze content and write every recipient row of each mailing that is due.

        The content is rendered first (the agenda comes from the events service over HTTP),
        and only then is the mailing claimed, in a short transaction that checks it is still
        the same mailing, still scheduled: no lock or transaction waits on another service."""
        started = 0
        passed: list[uuid.UUID] = []
        while True:
            async with self._pool.acquire() as conn:
                due = await repository.next_due_mailing(conn, self._clock(), passed)
            if due is None:
                return started
            try:
                rendered = await self.render(due, personal=True)
            except EventsUnavailable as exc:
                # It promises the agenda: it waits for the events service (next tick).
                log.warning("mailing %s waits for the agenda: %s", due.id, exc)
                return started
            async with self._pool.acquire() as conn, conn.transaction():
                mailing = await repository.claim_scheduled_mailing(conn, due.id)
                if mailing != due:
                    # Started by another worker, or changed while we rendered: look again.
                    passed.append(due.id)
                    continue
                count = await repository.materialise_recipients(
                    conn, due.id, Audience.from_json(due.audience)
                )
                await repository.start_mailing(
                    conn, due.id, rendered.html, rendered.text, self._clock()
                )
                await notify(conn, WORK_CHANGED)
            log.info("mailing %s started: %d recipients", due.id, count)
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
        return self.links.subject(purpose, token) is not None

    async def unsubscribe(self, token: str) -> bool:
        """One-click or by button; a second time changes nothing and is no error."""
        recipient_id = self.links.subject(UNSUBSCRIBE, token)
        if recipient_id is None:
            return False
        async with self._pool.acquire() as conn, conn.transaction():
            key = await repository.recipient_person(conn, recipient_id)
            if key is None:
                return True  # a test copy, or erased since: nothing to unsubscribe
            await repository.suppress(conn, key, "unsubscribed", "newsletters")
            await repository.unsubscribe_person(conn, key)
        return True

    async def confirm_subscription(self, token: str) -> bool:
        subscriber_id = self.links.subject(NEWSLETTER_CONFIRMATION, token)
        if subscriber_id is None:
            return False
        async with self._pool.acquire() as conn, conn.transaction():
            return await repository.confirm_subscriber(conn, subscriber_id) is not None

    async def subscribe(self, service: NotificationsService, wish: NewsletterWish) -> bool:
        """The newsletter form's wish, in a transaction of its own (``service.subscribe``)."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await service.subscribe(conn, wish)


def web_version_of(frozen_html: str) -> str:
    """The personal parts out: a general greeting, no unsubscribe link (it is nobody's)."""
    html = re.sub(r"<!--sto-afmelden-->.*?<!--/sto-afmelden-->", "", frozen_html, flags=re.S)
    return html.replace(NAME_MARK, "lezer")
