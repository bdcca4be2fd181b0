-- One data key per registration: the only way to read the contact its messages carry.
-- Deleting the row is the erasure of every copy of that contact on every topic.
CREATE TABLE data_keys (
    subject    uuid PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
