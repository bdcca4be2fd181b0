-- The school site of each registrant (BRIN + vestigingsnummer; NULL: another school or none):
-- a category the figures group by, like the region. Filled from registration messages of
-- version 4 on.
ALTER TABLE registrants ADD COLUMN school_code text;
