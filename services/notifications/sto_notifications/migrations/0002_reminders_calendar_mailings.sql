-- Calendar invitations, reminders, follow-ups and newsletters.

-- Calendar attachments travel with the queued email; the method (REQUEST or CANCEL) is also
-- the Content-Type parameter calendar clients look at.
ALTER TABLE emails ADD COLUMN ics text;
ALTER TABLE emails ADD COLUMN ics_method text;
-- The sender process holding a claimed row: a row whose sender's advisory lock is gone is
-- requeued at once (see service.py, "the send/crash window").
ALTER TABLE emails ADD COLUMN claimed_by integer;

-- 'all' stops every email (hard bounces); 'newsletters' only mailings (an unsubscribe).
ALTER TABLE suppressions ADD COLUMN scope text NOT NULL DEFAULT 'all'
    CHECK (scope IN ('all', 'newsletters'));

-- The newest event snapshot seen (from the events topic, or from a registration's view when
-- the event's own message has not arrived yet). Older revisions never overwrite newer ones.
CREATE TABLE event_schedule (
    event_id               uuid PRIMARY KEY,
    revision               integer NOT NULL,
    status                 text NOT NULL,
    title                  text NOT NULL,
    starts_at              timestamptz NOT NULL,
    ends_at                timestamptz NOT NULL,
    venue                  text,
    replay_url             text,
    reminder_offsets_hours double precision[] NOT NULL DEFAULT '{24,1}',
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- What this service needs of each registration to remind, move, cancel and follow up.
CREATE TABLE registrations (
    registration_id uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    status          text NOT NULL,
    name            text NOT NULL,
    email           text NOT NULL,
    role            text,
    region_code     text,
    viewer_id       text NOT NULL,
    manage_url      text NOT NULL,
    -- SEQUENCE of the last calendar object sent for this registration (-1: none yet).
    ics_sequence    integer NOT NULL DEFAULT -1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registrations_event ON registrations (event_id, status);
CREATE INDEX registrations_email ON registrations (lower(email));

-- One row per (registration, offset): moved by reschedules, dropped by cancellations.
CREATE TABLE reminders (
    registration_id uuid NOT NULL REFERENCES registrations ON DELETE CASCADE,
    offset_minutes  integer NOT NULL,
    event_id        uuid NOT NULL,
    event_revision  integer NOT NULL,
    due_at          timestamptz NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('pending', 'queued', 'skipped', 'missed', 'dropped')),
    email_id        uuid,
    PRIMARY KEY (registration_id, offset_minutes)
);
CREATE INDEX reminders_due ON reminders (due_at) WHERE status = 'pending';
CREATE INDEX reminders_event ON reminders (event_id);

-- Attendance from analytics, kept until the event is finalised.
CREATE TABLE attendance (
    registration_id uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    attended        boolean NOT NULL,
    minutes_watched double precision NOT NULL
);
CREATE TABLE finalised_events (
    event_id     uuid PRIMARY KEY,
    finalised_at timestamptz NOT NULL DEFAULT now()
);

-- Newsletter subscribers; double opt-in: 'pending' until the link in the email is followed.
CREATE TABLE subscribers (
    id              uuid PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    email_sha256    text NOT NULL,
    name            text NOT NULL DEFAULT '',
    role            text,
    region_code     text,
    interests       text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    source          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    unsubscribed_at timestamptz
);
CREATE INDEX subscribers_hash ON subscribers (email_sha256);

CREATE TABLE mailings (
    id             uuid PRIMARY KEY,
    subject        text NOT NULL,
    body           text NOT NULL,
    audience       jsonb NOT NULL,
    include_events boolean NOT NULL DEFAULT false,
    status         text NOT NULL
                   CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')),
    scheduled_at   timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    -- Frozen when sending starts: every recipient gets the same content, restart or not.
    frozen_html    text,
    frozen_text    text
);
CREATE INDEX mailings_due ON mailings (scheduled_at) WHERE status = 'scheduled';

-- One row per recipient of a mailing, written before anything is sent; UNIQUE (mailing, email)
-- means nobody is on a mailing twice. A row is 'sent' right after the SMTP server accepted it.
CREATE TABLE mailing_recipients (
    id              uuid PRIMARY KEY,
    mailing_id      uuid NOT NULL REFERENCES mailings ON DELETE CASCADE,
    email           text NOT NULL,
    name            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      integer,
    last_error      text,
    sent_at         timestamptz,
    UNIQUE (mailing_id, email)
);
CREATE INDEX mailing_recipients_due ON mailing_recipients (next_attempt_at) WHERE status = 'queued';
CREATE INDEX mailing_recipients_sending ON mailing_recipients (claimed_by) WHERE status = 'sending';
