-- The outbox (issue 16): one row per event and destination (a webhook, a hook), written in the
-- same transaction as the change the event describes, and delivered from here at least once by
-- the one replica holding the outbox lease. Kept in step with migrations/postgres.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- 'webhook <url>' or 'hook <index> <kind>': which configured destination gets it.
    destination TEXT NOT NULL,
    -- The event as delivered to webhooks: {"id", "type", "created_at", "data"}.
    body TEXT NOT NULL,
    -- 'pending', 'delivered' or 'failed' (given up after 24 h; an admin may retry it).
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (event_id, destination)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Who does a job only one replica may do at a time (the outbox delivery), until when.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
