-- An attendance certificate as issued when its event was finalised: it keeps the name the
-- person registered with for the certificate's own retention (CERTIFICATE_RETENTION_DAYS),
-- after the registration itself is anonymised; an erasure removes it at once.
CREATE TABLE certificates (
    registration_id uuid PRIMARY KEY,
    event_id        uuid        NOT NULL,
    name            text        NOT NULL,
    title           text        NOT NULL,
    starts_at       timestamptz NOT NULL,
    minutes_watched integer     NOT NULL,
    checked_in      boolean     NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_issued ON certificates (issued_at);

-- Certificates of events finalised before this table: issued now, from what was kept.
INSERT INTO certificates (registration_id, event_id, name, title, starts_at, minutes_watched,
                          checked_in)
SELECT a.registration_id, a.event_id, r.name, e.title, e.starts_at, a.minutes_watched,
       a.checked_in
FROM attendance a
JOIN tracked_events e ON e.event_id = a.event_id
JOIN registrants r ON r.registration_id = a.registration_id
WHERE a.attended AND NOT r.erased
ON CONFLICT DO NOTHING;
