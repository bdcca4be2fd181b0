-- Waiting-list length kept beside the seat count, changed in the same statements that move
-- people on or off the list: a waitlisted message states its position without a count(*).
ALTER TABLE events ADD COLUMN waitlisted_count integer NOT NULL DEFAULT 0
    CHECK (waitlisted_count >= 0);
UPDATE events e SET waitlisted_count = (
    SELECT count(*) FROM registrations r WHERE r.event_id = e.id AND r.status = 'waitlisted');

-- Colleagues signed up in one form share a group id (each keeps their own registration).
ALTER TABLE registrations ADD COLUMN group_id uuid;
-- Erasure removes the personal fields and keeps the row, so counts stay right.
ALTER TABLE registrations ALTER COLUMN name DROP NOT NULL;
ALTER TABLE registrations ALTER COLUMN email DROP NOT NULL;
ALTER TABLE registrations ALTER COLUMN organisation DROP NOT NULL;
ALTER TABLE registrations ADD COLUMN erased_at timestamptz;
ALTER TABLE registrations ADD COLUMN checked_in_by text;

-- The organisers' attendee list, filtered by status, region and role.
CREATE INDEX registrations_event_status ON registrations (event_id, status, queue_number);
