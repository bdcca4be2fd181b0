-- A person named without their address: the HMAC-SHA256 of the normalised address with the
-- link secret (stolive_shared.privacy.person_key). The service writes it (PostgreSQL has no
-- keyed hash of its own); erasures name people by it, and the suppression list keeps nothing
-- else. Rows from before get theirs from the scheduler (fill_person_keys), a batch a tick.
ALTER TABLE subscribers ADD COLUMN person_key text;
CREATE INDEX subscribers_person ON subscribers (person_key);
ALTER TABLE registrations ADD COLUMN person_key text;
CREATE INDEX registrations_person ON registrations (person_key);
ALTER TABLE emails ADD COLUMN recipient_key text;
CREATE INDEX emails_recipient_key ON emails (recipient_key);
ALTER TABLE mailing_recipients ADD COLUMN person_key text;
CREATE INDEX mailing_recipients_person ON mailing_recipients (person_key);

-- Who gets no e-mail (unsubscribed from newsletters, or bouncing), by keyed hash only: a
-- bounce must outlive the person's erasure, their address must not.
CREATE TABLE suppressed (
    person_key text PRIMARY KEY,
    reason     text NOT NULL,
    scope      text NOT NULL DEFAULT 'all' CHECK (scope IN ('all', 'newsletters')),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The old list (by address) is emptied into the new one by fill_person_keys, which finds the
-- rows still without a key by these (empty once it is done):
CREATE INDEX subscribers_unkeyed ON subscribers (email) WHERE person_key IS NULL;
CREATE INDEX registrations_unkeyed ON registrations (email) WHERE person_key IS NULL;
CREATE INDEX emails_unkeyed ON emails (recipient) WHERE recipient_key IS NULL;
CREATE INDEX mailing_recipients_unkeyed ON mailing_recipients (email) WHERE person_key IS NULL;
