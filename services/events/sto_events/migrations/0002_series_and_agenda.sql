-- Series: STO LIVE is the programme's numbered broadcast series; every webinar belongs to one.
ALTER TABLE series ADD COLUMN description text NOT NULL DEFAULT '';
INSERT INTO series (code, title, description)
VALUES ('sto-live', 'STO LIVE', 'De genummerde online uitzendingen van Sterk Techniekonderwijs')
ON CONFLICT (code) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description;

-- A region's agenda lists its meetings; the national ones are found by kind.
CREATE INDEX event_regions_region ON event_regions (region_code, event_id);
CREATE INDEX events_kind_starts_at ON events (kind, starts_at);
