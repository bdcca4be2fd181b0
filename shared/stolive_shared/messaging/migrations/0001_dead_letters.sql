-- The dead letters someone dealt with. A broker cannot delete one record from a topic, so a
-- letter in <topic>.dlq stays there; `stolive dlq list` shows it only while no row here names
-- it. A letter is named by where it lies and its timestamp: the embedded broker forgets every
-- record when it restarts and hands out offset 0 again.
CREATE TABLE dead_letters_handled (
    dlq_topic        text        NOT NULL,
    dlq_partition    integer     NOT NULL,
    dlq_offset       bigint      NOT NULL,
    dlq_timestamp_ms bigint      NOT NULL,
    action           text        NOT NULL CHECK (action IN ('replayed', 'discarded')),
    source_topic     text,
    message_id       text,
    -- where a replay put the message again
    replayed_partition integer,
    replayed_offset  bigint,
    handled_by       text        NOT NULL,
    note             text,
    handled_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset, dlq_timestamp_ms)
);
