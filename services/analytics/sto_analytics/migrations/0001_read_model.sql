-- The analytics read model: figures the Faust workers computed, readable by the API whatever
-- worker owns the event's partition, and kept when the broker or its topics are gone.
CREATE TABLE registration_counts (
    event_id   uuid PRIMARY KEY,
    confirmed  integer NOT NULL,
    waitlisted integer NOT NULL,
    cancelled  integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
