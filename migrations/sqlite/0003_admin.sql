-- Live configuration and the admin audit log for SQLite (issue 7). Kept in step with
-- migrations/postgres.

-- The managed part of the configuration (upstreams, clients, scopes, token lifetimes) as TOML,
-- one row per version. The highest version is in effect; every replica polls it. A version is
-- written once: an admin change inserts version + 1, and the primary key makes two concurrent
-- changes on the same base conflict instead of one silently undoing the other. Client secrets
-- appear only as hashes (client_secret_hash), never in plaintext.
CREATE TABLE config_versions (
    version    INTEGER PRIMARY KEY,
    document   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- `seed` for the first version taken from the file, else the admin who made the change.
    author     TEXT NOT NULL
);

-- Every admin change: who, when, what, and the state before and after (JSON). Written in the
-- same transaction as the configuration version it produced (config_version), or alone for
-- changes outside the configuration (an admin withdrawing a user's consent).
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    before         TEXT,
    after          TEXT,
    config_version INTEGER
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- Both tables are append-only: history is never rewritten.
CREATE TRIGGER config_versions_append_only_update BEFORE UPDATE ON config_versions
BEGIN SELECT RAISE(ABORT, 'config_versions is append-only'); END;
CREATE TRIGGER config_versions_append_only_delete BEFORE DELETE ON config_versions
BEGIN SELECT RAISE(ABORT, 'config_versions is append-only'); END;
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The admin user list sorts and searches these.
CREATE INDEX users_last_login ON users (last_login_at);
