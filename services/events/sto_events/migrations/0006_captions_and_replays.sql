-- WebVTT captions of an event's stream and replay (optional), and the index the public
-- "Terugblikken" page reads: ended events with a replay, newest first.
ALTER TABLE events ADD COLUMN captions_url text;
CREATE INDEX events_with_replay ON events (starts_at DESC) WHERE replay_url IS NOT NULL;
