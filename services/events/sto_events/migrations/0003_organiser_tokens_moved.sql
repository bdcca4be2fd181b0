-- Organiser tokens moved to the organisers' schema that every service checks
-- (stolive_shared/organisers/migrations/0001, which copied them before this runs).
DROP TABLE organiser_tokens;
