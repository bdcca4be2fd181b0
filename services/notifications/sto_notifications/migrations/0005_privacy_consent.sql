-- Which version of the privacy statement a newsletter sign-up agreed to, and when.
ALTER TABLE subscribers ADD COLUMN privacy_version text;
ALTER TABLE subscribers ADD COLUMN consented_at timestamptz;
