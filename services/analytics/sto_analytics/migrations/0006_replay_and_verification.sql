-- Replay watching by the recording: the minutes of the recording (floor(position_s / 60)) a
-- viewer's replay beacons showed, with the first moment each was shown (the replay window
-- counts from there). A set with a minimum: replays of beacons change nothing.
CREATE TABLE recording_minutes (
    event_id         uuid        NOT NULL,
    viewer_id        text        NOT NULL,
    minute           integer     NOT NULL,
    first_watched_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, viewer_id, minute)
);

-- Viewing arrived after the finalisation: the figures and late replay attendance of this
-- event are to be brought up to date by the periodic job (which clears the mark).
ALTER TABLE tracked_events ADD COLUMN figures_stale boolean NOT NULL DEFAULT false;
CREATE INDEX tracked_events_stale ON tracked_events (event_id) WHERE figures_stale;

-- Attendance of two kinds: live or replay, with the minutes of each.
ALTER TABLE attendance
    ADD COLUMN minutes_live   integer NOT NULL DEFAULT 0,
    ADD COLUMN minutes_replay integer NOT NULL DEFAULT 0,
    ADD COLUMN attended_as    text CHECK (attended_as IN ('live', 'replay'));
UPDATE attendance SET
    minutes_live = CASE WHEN watched_live THEN minutes_watched ELSE 0 END,
    minutes_replay = CASE WHEN watched_live THEN 0 ELSE minutes_watched END,
    attended_as = CASE WHEN attended THEN 'live' END;

ALTER TABLE broadcast_figures
    ADD COLUMN attended_live          integer NOT NULL DEFAULT 0,
    ADD COLUMN attended_replay        integer NOT NULL DEFAULT 0,
    ADD COLUMN replay_attendance_days double precision NOT NULL DEFAULT 30;
UPDATE broadcast_figures SET attended_live = attended;

-- A certificate says how its holder attended and carries a verification code anyone can
-- check on the public verify page (10 symbols of Crockford's base 32, ``certificates.py``).
ALTER TABLE certificates
    ADD COLUMN minutes_live      integer NOT NULL DEFAULT 0,
    ADD COLUMN minutes_replay    integer NOT NULL DEFAULT 0,
    ADD COLUMN attended_as       text    NOT NULL DEFAULT 'live',
    ADD COLUMN verification_code text UNIQUE;
UPDATE certificates SET minutes_live = minutes_watched;
-- Codes for certificates issued before: 10 random bytes of a version-4 UUID (a strong random
-- source), each taken modulo 32 (unbiased), skipping the bytes with fixed version bits.
UPDATE certificates c SET verification_code = (
    SELECT string_agg(substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', get_byte(r.b, i) % 32 + 1, 1),
                      '' ORDER BY i)
    FROM (SELECT uuid_send(gen_random_uuid()) AS b WHERE c.registration_id IS NOT NULL) r,
         unnest(ARRAY[0, 1, 2, 3, 4, 5, 10, 11, 12, 13]) AS i)
WHERE verification_code IS NULL;
ALTER TABLE certificates ALTER COLUMN verification_code SET NOT NULL;
