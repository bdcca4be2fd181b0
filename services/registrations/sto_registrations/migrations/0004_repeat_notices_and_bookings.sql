-- A sign-up with an address already registered for the event is answered like any other;
-- the address itself is told ("Je was al aangemeld"), at most once per interval.
ALTER TABLE registrations ADD COLUMN repeat_notice_at timestamptz;

-- Who signed up colleagues: the booker sees and manages them from their own link.
CREATE TABLE bookings (
    group_id   uuid PRIMARY KEY,
    booker_id  uuid NOT NULL REFERENCES registrations (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bookings_booker ON bookings (booker_id);
CREATE INDEX registrations_group ON registrations (group_id) WHERE group_id IS NOT NULL;
