"""The e-mails after an event: thanks (with the certificate) to who attended, the replay to
who did not, and "Je certificaat staat klaar" to who attends by replay later.

Each goes once per registration, ever (``domain.follow_up_key``): a replay whose address
changes twice, a finalisation delivered twice or an attendance recorded again mail nobody
twice. The replay e-mail goes when the replay is there for a finalised event: at the
finalisation when the event already had one, or when ``event.replay_published`` comes later.
Those two messages arrive on different topics, handled side by side: both handlers hold the
event's row (``get_event(lock=True)``; the replay's upsert locks it too) while they decide,
so the second one sees what the first one wrote and exactly one of them mails.

Every link is personal: the replay is watched on the person's own watch page, so their
viewing counts for them (and can earn the certificate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from sto_notifications import domain, repository
from sto_notifications.repository import EventRow, RegistrationRow
from sto_notifications.service.queueing import EmailQueue, event_email, event_row, rekey
from stolive_shared.contracts.analytics import AttendanceFinalised, AttendanceRecorded
from stolive_shared.contracts.events import EventReplayPublished
from stolive_shared.contracts.notifications import EmailKind
from stolive_shared.links import PersonalLinks

log = logging.getLogger(__name__)


@dataclass
class FollowUps:
    links: PersonalLinks
    emails: EmailQueue

    async def on_attendance(self, conn: asyncpg.Connection, message: AttendanceRecorded) -> None:
        """Keep what analytics says of the person; a certificate earned by replay is mailed."""
        attendance = repository.Attendance(
            attended=message.attended,
            attended_as=message.attended_as,
            certificate=message.certificate,
        )
        await repository.record_attendance(
            conn, message.registration_id, message.event_id, attendance, message.minutes_watched
        )
        if not domain.certificate_ready(message.attended_as, message.certificate):
            return
        registration = await repository.get_registration(conn, message.registration_id)
        event = await repository.get_event(conn, message.event_id)
        if registration is None or event is None:
            log.info("a certificate for a registration not known here (erased?)")
            return
        await self._send(conn, "certificate_ready", registration, event, certificate=True)

    async def on_attendance_finalised(
        self, conn: asyncpg.Connection, message: AttendanceFinalised
    ) -> None:
        """Thank those who attended; offer the replay to the other confirmed registrants
        when the event has one (no e-mail promising what does not exist yet)."""
        event = await repository.get_event(conn, message.event_id, lock=True)
        if not await repository.mark_finalised(conn, message.event_id) or event is None:
            return
        await self._follow_up(conn, event, ("thank_you", "replay"))

    async def on_replay_published(
        self, conn: asyncpg.Connection, message: EventReplayPublished
    ) -> None:
        """Store the snapshot (the newest revision wins); once the attendance is final, the
        replay goes to whoever did not attend and did not get it yet."""
        if not await repository.upsert_event(conn, event_row(message.event)):
            return  # an older revision than we know: a newer message decides
        event = await repository.get_event(conn, message.event.event_id)
        if event is not None and await repository.is_finalised(conn, event.event_id):
            await self._follow_up(conn, event, ("replay",))

    async def _follow_up(
        self, conn: asyncpg.Connection, event: EventRow, kinds: tuple[EmailKind, ...]
    ) -> None:
        if event.status == "cancelled":
            return
        attendance = await repository.attendance_of(conn, event.event_id)
        for registration in await repository.registrations_of(conn, event.event_id, ("confirmed",)):
            seen = attendance.get(registration.registration_id)
            kind = domain.follow_up(
                attended=seen is not None and seen.attended,
                attended_as=seen.attended_as if seen else None,
                has_replay=bool(event.replay_url),
            )
            if kind is not None and kind in kinds:
                certificate = seen is not None and seen.certificate
                await self._send(conn, kind, registration, event, certificate=certificate)

    async def _send(
        self,
        conn: asyncpg.Connection,
        kind: EmailKind,
        registration: RegistrationRow,
        event: EventRow,
        *,
        certificate: bool,
    ) -> None:
        request = event_email(
            kind,
            registration,
            event,
            watch_url=self.links.watch(event.event_id, registration.viewer_id)
            if event.replay_url
            else None,
            certificate_url=self.links.certificate(registration.registration_id)
            if certificate
            else None,
        )
        key = domain.follow_up_key(kind, registration.registration_id)
        await self.emails.queue(conn, rekey(request, key))
