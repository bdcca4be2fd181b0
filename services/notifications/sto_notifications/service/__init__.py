"""The use cases of the notifications service, and the only place that opens transactions.

- ``reactions``: what a message means (e-mails queued, reminders planned), inside the
  consumer's transaction;
- ``follow_ups``: after an event: thanks, the replay, the certificate, each once;
- ``queueing``: an e-mail into the queue, once, with its calendar object;
- ``sending``: the e-mail and mailing senders, and the send/crash window they keep small;
- ``claims``: a sender's key (an advisory lock per session) and when a dead sender's rows go
  back to the queue;
- ``lanes``: a sender's lanes, one per SMTP connection, and how they stop;
- ``scheduling``: the worker that acts when something falls due;
- ``mailings``: what organisers do with a mailing, and the newsletter's personal links;
- ``history``: what was sent about a registration, for organisers;
- ``retention``: what the retention job removes, and when;
- ``wakeups``: the NOTIFY channels that wake the workers.
"""

from __future__ import annotations

from sto_notifications.service.history import EmailHistory
from sto_notifications.service.mailings import (
    DraftInvalid,
    MailingDraft,
    MailingService,
    MailingUnknown,
    web_version_of,
)
from sto_notifications.service.reactions import NotificationsService
from sto_notifications.service.retention import retention_rules
from sto_notifications.service.scheduling import Scheduler
from sto_notifications.service.sending import EmailSender, MailingSender, SenderStats

__all__ = [
    "DraftInvalid",
    "EmailHistory",
    "EmailSender",
    "MailingDraft",
    "MailingSender",
    "MailingService",
    "MailingUnknown",
    "NotificationsService",
    "Scheduler",
    "SenderStats",
    "retention_rules",
    "web_version_of",
]
