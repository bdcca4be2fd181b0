-- Organiser credentials and sessions, checked by every service (stolive_shared.organisers).

-- Only the SHA-256 of each token is kept: the token is shown once, when it is made.
CREATE TABLE tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    token_sha256 text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Tokens made before this schema existed lived in the events service's schema.
DO $$
BEGIN
    IF to_regclass('events.organiser_tokens') IS NOT NULL THEN
        INSERT INTO tokens (name, token_sha256, created_at, revoked_at)
        SELECT name, token_sha256, created_at, revoked_at FROM events.organiser_tokens
        ON CONFLICT (token_sha256) DO NOTHING;
    END IF;
END
$$;

-- A session is known by the HMAC of its id (the cookie holds the id): the table alone lets
-- nobody in. It ends at logout (ended_at), when its token is revoked, after the idle timeout
-- (last_seen_at) and after its absolute lifetime (created_at); the limits are settings.
CREATE TABLE sessions (
    id_hmac      bytea PRIMARY KEY,
    token_id     bigint NOT NULL REFERENCES tokens (id),
    organiser    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);
CREATE INDEX sessions_of_token ON sessions (token_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
