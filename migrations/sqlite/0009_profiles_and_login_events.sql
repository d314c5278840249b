-- Issues 17 and 19: what an admin finds a user by and sees of them (the fields of Auth0's
-- Management API), blocking, and the login events the admin pages list. Flags are 0/1, as
-- everywhere in the schema. Kept in step with migrations/postgres.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN picture TEXT;
ALTER TABLE users ADD COLUMN last_ip TEXT;
-- Users stored before this count their one known login.
ALTER TABLE users ADD COLUMN logins_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_email ON users (LOWER(email));

-- Logins and refusals, newest first on the admin pages; kept 90 days (purge_expired).
CREATE TABLE login_events (
    -- In the order they were recorded: the list's order and its pages' cursor.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    -- 'success', 'failure' (the upstream or the mapping refused), 'blocked' or 'denied' (the
    -- user declined consent).
    result TEXT NOT NULL,
    -- Herald's sub, when the user is known.
    sub TEXT,
    upstream_id TEXT,
    client_id TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX login_events_at ON login_events (at);
CREATE INDEX login_events_sub ON login_events (sub);
