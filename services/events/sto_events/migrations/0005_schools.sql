-- School sites (vmbo-vestigingen): BRIN number and vestigingsnummer, name, place, STO region.
CREATE TABLE schools (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}[A-Z]{2}[0-9]{2}$'),
    name        text NOT NULL,
    place       text NOT NULL DEFAULT '',
    region_code text REFERENCES regions (code),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schools_by_region ON schools (region_code, name);
