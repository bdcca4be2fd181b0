-- Named organiser accounts with a role, e-mailed one-time sign-in links, the audit log, and
-- the regions of each event (what a regional programme leader's scope is checked against).

CREATE TABLE accounts (
    id           bigserial PRIMARY KEY,
    email        text NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('programme', 'regional', 'support', 'checkin')),
    region_codes text[] NOT NULL DEFAULT '{}',
    event_ids    uuid[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    removed_at   timestamptz
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email)) WHERE removed_at IS NULL;

-- A token belongs to an account and acts with its role. Tokens made before accounts existed
-- become programme-team accounts named after the token; their address is a placeholder the
-- programme team replaces on the accounts page before that account can sign in by e-mail.
ALTER TABLE tokens ADD COLUMN account_id bigint REFERENCES accounts (id);
INSERT INTO accounts (email, name, role)
SELECT DISTINCT lower(regexp_replace(name, '[^A-Za-z0-9._-]', '-', 'g')) || '@token.invalid',
       name, 'programme'
FROM tokens WHERE revoked_at IS NULL;
UPDATE tokens t SET account_id = a.id
FROM accounts a WHERE a.name = t.name AND a.email LIKE '%@token.invalid';
UPDATE tokens SET revoked_at = now() WHERE account_id IS NULL AND revoked_at IS NULL;

-- A session comes from a token (the login form) or from a sign-in link (no token).
ALTER TABLE sessions ALTER COLUMN token_id DROP NOT NULL;
ALTER TABLE sessions ADD COLUMN account_id bigint REFERENCES accounts (id);
UPDATE sessions s SET account_id = t.account_id FROM tokens t WHERE t.id = s.token_id;
UPDATE sessions SET ended_at = now() WHERE account_id IS NULL AND ended_at IS NULL;
CREATE INDEX sessions_of_account ON sessions (account_id) WHERE ended_at IS NULL;

-- Only the HMAC of a link's secret is kept; the link works once, until expires_at.
CREATE TABLE sign_in_links (
    id_hmac    bytea PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX sign_in_links_created ON sign_in_links (created_at);

-- Who did what, when, and whether it was allowed. ``actor`` is the account's address at the
-- time (an account removed later still explains its rows); ``subject`` names what was acted
-- on without personal data (a registration id, a keyed hash of an address, an account id).
CREATE TABLE audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    account_id bigint,
    actor      text NOT NULL,
    role       text NOT NULL,
    service    text NOT NULL,
    action     text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('done', 'denied')),
    event_id   uuid,
    subject    text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_by_event ON audit (event_id, at) WHERE event_id IS NOT NULL;

-- The regions of every event, written by the events service in the transaction that changes
-- the event, so every service checks a regional leader's scope against the same answer.
CREATE TABLE event_scope (
    event_id     uuid PRIMARY KEY,
    region_codes text[] NOT NULL DEFAULT '{}'
);
