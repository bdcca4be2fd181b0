-- What analytics said about each registrant's attendance (``attendance.recorded``): the manage
-- page links the certificate once it is issued. No personal data: ids and minutes.
CREATE TABLE attendance (
    registration_id uuid PRIMARY KEY,
    attended_as text CHECK (attended_as IN ('live', 'replay')),
    certificate boolean NOT NULL DEFAULT false,
    minutes_live real NOT NULL DEFAULT 0,
    minutes_replay real NOT NULL DEFAULT 0,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
