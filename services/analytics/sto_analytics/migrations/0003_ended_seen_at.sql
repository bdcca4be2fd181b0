-- When analytics learned that an event ended: the grace period before finalising counts from
-- here as well as from the end itself, so an end reported late (or replayed) still leaves the
-- viewer-activity workers time to write the last beacons.
ALTER TABLE tracked_events ADD COLUMN ended_seen_at timestamptz;
