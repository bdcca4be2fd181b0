-- When a registration lost its name, address and school because its event ended longer ago
-- than the retention period (registration_retention_days); erased_at is for a person's own
-- request. The index finds what is still to anonymise without reading the anonymised past.
ALTER TABLE registrations ADD COLUMN anonymised_at timestamptz;
CREATE INDEX registrations_to_anonymise ON registrations (event_id)
    WHERE anonymised_at IS NULL AND erased_at IS NULL;
