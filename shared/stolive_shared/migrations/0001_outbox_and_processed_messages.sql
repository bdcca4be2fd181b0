-- Applied into every service's schema before the service's own migrations.

-- Messages leave through this table: written in the same transaction as the change that
-- caused them, published in id order by the one relay that holds the schema's advisory lock.
-- Published rows are kept for a retention period so they can be republished after the
-- broker loses its data.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    message_id   uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    publish_count integer    NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The highest offset the relay has seen the broker acknowledge, per partition: an
-- acknowledgement below it means the broker lost its data.
CREATE TABLE outbox_relay_offsets (
    topic      text    NOT NULL,
    partition  integer NOT NULL,
    max_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- One row per message a consumer has applied, written in the same transaction as the effect:
-- a redelivered message finds its row and does nothing.
CREATE TABLE processed_messages (
    consumer     text        NOT NULL,
    message_id   uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX processed_messages_processed_at ON processed_messages (processed_at);
