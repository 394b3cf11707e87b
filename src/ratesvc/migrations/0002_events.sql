-- Analytics events reported by clients, written by the event drainer from the Redis stream.
-- dedup_key makes redelivery harmless: "c:<event_id>" when the client sent an event_id
-- (its retries collapse into one row), else "s:<stream entry id>:<index in the entry>".
CREATE TABLE events (
    dedup_key   text        PRIMARY KEY,
    event_id    text,
    user_id     bigint      NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload     jsonb,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_type_time ON events (event_type, occurred_at);

-- Rows per event_type, kept in the same statement that inserts the rows, so it always
-- equals count(*) of events per type.  Redis counters are copies of these values.
CREATE TABLE event_counts (
    event_type text   PRIMARY KEY,
    count      bigint NOT NULL CHECK (count >= 0)
);
