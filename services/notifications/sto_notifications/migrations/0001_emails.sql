-- Every email this service will send, written before sending: the unique dedup_key makes a
-- redelivered message or a restarted scheduler unable to queue the same email twice.
CREATE TABLE emails (
    id              uuid PRIMARY KEY,
    dedup_key       text NOT NULL UNIQUE,
    kind            text NOT NULL,
    event_id        uuid,
    registration_id uuid,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body_text       text NOT NULL,
    body_html       text NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'queued';
CREATE INDEX emails_recipient ON emails (lower(recipient));

-- Addresses no email goes to: unsubscribed, or bouncing permanently.
CREATE TABLE suppressions (
    email      text PRIMARY KEY,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
