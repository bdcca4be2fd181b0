-- Watching, live figures, events and final figures: what the Faust workers computed, kept in
-- PostgreSQL so that every API process answers for every event, whichever worker owns its
-- partition, and so that the figures of ended broadcasts survive broker loss and retention.

-- A registration as analytics needs it: the join link's viewer id ties watching to it.
CREATE TABLE registrants (
    registration_id uuid PRIMARY KEY,
    event_id        uuid    NOT NULL,
    viewer_id       text    NOT NULL,
    status          text    NOT NULL,
    region_code     text,
    role            text    NOT NULL,
    name            text    NOT NULL DEFAULT '',
    checked_in      boolean NOT NULL DEFAULT false,
    erased          boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registrants_by_viewer ON registrants (event_id, viewer_id);

-- The minutes (since the epoch) in which a viewer's beacon arrived, per mode: a set, so a
-- replayed beacon adds nothing. Views, watch minutes and attendance are computed from it.
CREATE TABLE viewer_minutes (
    event_id  uuid    NOT NULL,
    viewer_id text    NOT NULL,
    mode      text    NOT NULL,
    minute    integer NOT NULL,
    PRIMARY KEY (event_id, viewer_id, mode, minute)
);

-- The live count now, and the highest it reached (raised only: max is idempotent).
CREATE TABLE live_counts (
    event_id        uuid PRIMARY KEY,
    viewers         integer     NOT NULL,
    peak            integer     NOT NULL DEFAULT 0,
    peak_at         timestamptz,
    by_region       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    by_role         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    counted_through timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The highest live count seen within each minute: the viewers-over-time chart.
CREATE TABLE live_minutes (
    event_id uuid    NOT NULL,
    minute   integer NOT NULL,
    viewers  integer NOT NULL,
    PRIMARY KEY (event_id, minute)
);

-- Events as the events topic describes them (highest revision wins).
CREATE TABLE tracked_events (
    event_id      uuid PRIMARY KEY,
    revision      integer     NOT NULL,
    kind          text        NOT NULL,
    status        text        NOT NULL,
    title         text        NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    series_code   text,
    series_number integer,
    went_live_at  timestamptz,
    ended_at      timestamptz,
    finalised_at  timestamptz
);
CREATE INDEX tracked_events_to_finalise ON tracked_events (ended_at) WHERE finalised_at IS NULL;
CREATE INDEX tracked_events_by_series ON tracked_events (series_code, series_number);

-- The final figures of every ended broadcast, written once when it is finalised.
CREATE TABLE broadcast_figures (
    event_id             uuid PRIMARY KEY,
    title                text        NOT NULL,
    series_code          text,
    series_number        integer,
    starts_at            timestamptz NOT NULL,
    broadcast_minutes    double precision NOT NULL,
    views_live           integer     NOT NULL,
    views_replay         integer     NOT NULL,
    unique_viewers       integer     NOT NULL,
    watch_minutes_live   integer     NOT NULL,
    watch_minutes_replay integer     NOT NULL,
    average_live_viewers double precision NOT NULL,
    peak_live_viewers    integer     NOT NULL,
    peak_at              timestamptz,
    registered           integer     NOT NULL,
    confirmed            integer     NOT NULL,
    waitlisted           integer     NOT NULL,
    cancelled            integer     NOT NULL,
    watched              integer     NOT NULL,
    attended             integer     NOT NULL,
    min_minutes          double precision NOT NULL,
    computed_at          timestamptz NOT NULL DEFAULT now()
);

-- Per registrant, as finalised: what the certificate and the attendance messages say.
CREATE TABLE attendance (
    registration_id uuid PRIMARY KEY,
    event_id        uuid    NOT NULL,
    minutes_watched integer NOT NULL,
    watched_live    boolean NOT NULL,
    checked_in      boolean NOT NULL,
    attended        boolean NOT NULL
);
CREATE INDEX attendance_by_event ON attendance (event_id);
