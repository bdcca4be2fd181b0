"""Messages on the notifications topic: what happened to each email, keyed by event id.

Transactional emails report each outcome (``email.sent``, ``email.failed``); a newsletter
reports its totals once (``mailing.finished``), keyed by mailing id: no address on the topic.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import NOTIFICATIONS

# Kinds are only ever added (a wider set: every message once sent still reads); no service
# treats them as a closed set. Added since version 1: event_updated, certificate_ready.
EmailKind = Literal[
    "registration_confirmed",
    "registration_waitlisted",
    "registration_promoted",
    "registration_cancelled",
    "registration_repeated",
    "event_rescheduled",
    "event_cancelled",
    "event_live",
    "event_updated",
    "reminder",
    "replay",
    "thank_you",
    "certificate_ready",
    "newsletter",
    "subscription_confirmation",
    "data_export",
    "organiser_sign_in",
]


class _EmailMessage(Message):
    TOPIC: ClassVar[str] = NOTIFICATIONS.name
    email_id: uuid.UUID
    kind: EmailKind
    event_id: uuid.UUID | None = None
    registration_id: uuid.UUID | None = None

    def partition_key(self) -> str:
        return str(self.event_id or self.email_id)


class EmailSent(_EmailMessage):
    type: Literal["email.sent"] = "email.sent"
    version: Literal[1] = 1


class EmailFailed(_EmailMessage):
    type: Literal["email.failed"] = "email.failed"
    version: Literal[1] = 1
    permanent: bool
    error: str


class MailingFinished(Message):
    """A mailing went out: its totals, no addresses (one message per mailing, not per person)."""

    TOPIC: ClassVar[str] = NOTIFICATIONS.name
    type: Literal["mailing.finished"] = "mailing.finished"
    version: Literal[1] = 1
    mailing_id: uuid.UUID
    recipients: int
    sent: int
    failed: int
    suppressed: int
    started_at: AwareDatetime
    finished_at: AwareDatetime

    def partition_key(self) -> str:
        return str(self.mailing_id)


NOTIFICATION_MESSAGES: tuple[type[Message], ...] = (EmailSent, EmailFailed, MailingFinished)
