"""SQL for the notifications service, one module per job. Opens no transactions: the use
cases in ``service`` decide what commits together. Addresses are stored lower-cased where they
identify someone (subscribers, mailing recipients), each with the person's keyed hash; the
suppression list keeps only the hash.

- ``sending``: the e-mail queue of both senders, outcomes, suppressions;
- ``registrations``: the copies of events and registrations, attendance, erasure;
- ``reminders``: planned reminders and their settling;
- ``mailings``: subscribers, mailings and their recipients;
- ``people``: keyed hashes for rows from before them, a person's data;
- ``retention``: what passed its retention period.
"""

from __future__ import annotations

from sto_notifications.repository.mailings import (
    MailingRow,
    Subscriber,
    add_subscriber,
    claim_scheduled_mailing,
    close_mailing,
    confirm_subscriber,
    count_subscribers,
    create_mailing,
    finished_mailings,
    get_mailing,
    list_mailings,
    mailing_progress,
    materialise_recipients,
    next_due_mailing,
    next_mailing_at,
    set_mailing_schedule,
    start_mailing,
    unsubscribe_person,
    update_mailing,
)
from sto_notifications.repository.people import fill_person_keys, person_data
from sto_notifications.repository.registrations import (
    EventRow,
    RegistrationRow,
    attended_ids,
    erase_person,
    get_event,
    get_registration,
    mark_finalised,
    record_attendance,
    registrations_of,
    set_ics_sequence,
    upsert_event,
    upsert_registration,
)
from sto_notifications.repository.reminders import (
    DueReminder,
    claim_due_reminders,
    drop_reminders,
    next_reminder_at,
    plan_reminders,
    reminders_of,
    settle_reminder,
)
from sto_notifications.repository.retention import (
    remove_lapsed_subscribers,
    remove_old_email_content,
    remove_old_mailing_recipients,
)
from sto_notifications.repository.sending import (
    SENDER_LOCK_CLASS,
    ClaimedRecipient,
    QueuedEmail,
    claim_due,
    claim_recipients,
    email_status,
    hard_failures,
    is_suppressed,
    mark_failed,
    mark_recipients_sent,
    mark_retry,
    mark_sent,
    queue_email,
    recipient_failed,
    recipient_person,
    recipient_retry,
    requeue_orphaned,
    suppress,
)

__all__ = [
    "SENDER_LOCK_CLASS",
    "ClaimedRecipient",
    "DueReminder",
    "EventRow",
    "MailingRow",
    "QueuedEmail",
    "RegistrationRow",
    "Subscriber",
    "add_subscriber",
    "attended_ids",
    "claim_due",
    "claim_due_reminders",
    "claim_recipients",
    "claim_scheduled_mailing",
    "close_mailing",
    "confirm_subscriber",
    "count_subscribers",
    "create_mailing",
    "drop_reminders",
    "email_status",
    "erase_person",
    "fill_person_keys",
    "finished_mailings",
    "get_event",
    "get_mailing",
    "get_registration",
    "hard_failures",
    "is_suppressed",
    "list_mailings",
    "mailing_progress",
    "mark_failed",
    "mark_finalised",
    "mark_recipients_sent",
    "mark_retry",
    "mark_sent",
    "materialise_recipients",
    "next_due_mailing",
    "next_mailing_at",
    "next_reminder_at",
    "person_data",
    "plan_reminders",
    "queue_email",
    "recipient_failed",
    "recipient_person",
    "recipient_retry",
    "record_attendance",
    "registrations_of",
    "reminders_of",
    "remove_lapsed_subscribers",
    "remove_old_email_content",
    "remove_old_mailing_recipients",
    "requeue_orphaned",
    "set_ics_sequence",
    "set_mailing_schedule",
    "settle_reminder",
    "start_mailing",
    "suppress",
    "unsubscribe_person",
    "update_mailing",
    "upsert_event",
    "upsert_registration",
]
