-- Every bounce, by keyed hash only, so hard and soft ones can be counted within a window
-- (bounces.py: one hard bounce suppresses, soft ones only after several). Each new bounce
-- of a person removes theirs older than the window; the suppression itself is kept in
-- ``suppressed``.
CREATE TABLE bounces (
    id          bigserial PRIMARY KEY,
    person_key  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('hard', 'soft')),
    smtp_code   integer,
    source      text NOT NULL,
    bounced_at  timestamptz NOT NULL
);
CREATE INDEX bounces_person ON bounces (person_key, bounced_at);
