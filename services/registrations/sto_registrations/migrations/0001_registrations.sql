-- What this service knows of each event, learned from the events topic (newest revision wins).
CREATE TABLE events (
    id                     uuid PRIMARY KEY,
    revision               integer NOT NULL,
    kind                   text NOT NULL,
    status                 text NOT NULL,
    title                  text NOT NULL,
    starts_at              timestamptz NOT NULL,
    ends_at                timestamptz NOT NULL,
    venue                  text,
    region_codes           text[] NOT NULL DEFAULT '{}',
    capacity               integer,
    waitlist_enabled       boolean NOT NULL,
    registration_opens_at  timestamptz,
    registration_closes_at timestamptz,
    -- Seats taken: changed only by an atomic conditional UPDATE, never read-then-written.
    confirmed_count        integer NOT NULL DEFAULT 0 CHECK (confirmed_count >= 0)
);

CREATE TABLE registrations (
    id             uuid PRIMARY KEY,
    event_id       uuid NOT NULL REFERENCES events (id),
    status         text NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    name           text NOT NULL,
    email          text NOT NULL,
    organisation   text NOT NULL DEFAULT '',
    role           text NOT NULL,
    region_code    text,
    profiles       text[] NOT NULL DEFAULT '{}',
    newsletter     boolean NOT NULL DEFAULT false,
    viewer_id      text NOT NULL UNIQUE,
    -- Order on the waiting list: the sequence value at sign-up.
    queue_number   bigserial,
    created_at     timestamptz NOT NULL DEFAULT now(),
    confirmed_at   timestamptz,
    cancelled_at   timestamptz,
    cancel_reason  text,
    checked_in_at  timestamptz
);
-- One active registration per person per event: a second sign-up returns the first.
CREATE UNIQUE INDEX registrations_one_active_per_email
    ON registrations (event_id, lower(email)) WHERE status <> 'cancelled';
CREATE INDEX registrations_waitlist ON registrations (event_id, queue_number) WHERE status = 'waitlisted';
CREATE INDEX registrations_email ON registrations (lower(email));
