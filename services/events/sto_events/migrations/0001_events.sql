CREATE TABLE regions (
    code          text PRIMARY KEY,
    name          text NOT NULL,
    province      text NOT NULL DEFAULT '',
    supra_region  text
);

CREATE TABLE series (
    code  text PRIMARY KEY,
    title text NOT NULL
);

CREATE TABLE events (
    id                      uuid PRIMARY KEY,
    kind                    text NOT NULL CHECK (kind IN ('webinar', 'regional_meeting', 'supra_regional_meeting', 'national_day')),
    status                  text NOT NULL CHECK (status IN ('draft', 'published', 'live', 'ended', 'cancelled')),
    revision                integer NOT NULL,
    title                   text NOT NULL,
    description             text NOT NULL DEFAULT '',
    starts_at               timestamptz NOT NULL,
    ends_at                 timestamptz NOT NULL,
    venue                   text,
    stream_url              text,
    replay_url              text,
    series_code             text REFERENCES series (code),
    series_number           integer,
    capacity                integer CHECK (capacity IS NULL OR capacity >= 0),
    waitlist_enabled        boolean NOT NULL DEFAULT true,
    registration_opens_at   timestamptz,
    registration_closes_at  timestamptz,
    reminder_offsets_hours  double precision[] NOT NULL DEFAULT '{24,1}',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX events_starts_at ON events (starts_at);
CREATE UNIQUE INDEX events_series_number ON events (series_code, series_number) WHERE series_number IS NOT NULL;

CREATE TABLE event_regions (
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    region_code text NOT NULL REFERENCES regions (code),
    PRIMARY KEY (event_id, region_code)
);

-- Organiser credentials: only the SHA-256 of each token is kept.
CREATE TABLE organiser_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    token_sha256 text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
