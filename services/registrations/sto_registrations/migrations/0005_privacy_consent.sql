-- Which version of the privacy statement the sign-up agreed to, and when (AVG: consent must
-- be demonstrable). Registrations from before this have neither.
ALTER TABLE registrations ADD COLUMN privacy_version text;
ALTER TABLE registrations ADD COLUMN consented_at timestamptz;
