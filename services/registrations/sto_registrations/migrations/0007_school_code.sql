-- The school site chosen on the sign-up form (BRIN + vestigingsnummer, from the events
-- service's list); NULL for another school or organisation, typed in organisation. A category
-- like the region: it stays when a person's name, address and typed school are removed.
ALTER TABLE registrations ADD COLUMN school_code text;
