-- Live configuration and the admin audit log for PostgreSQL (issue 7). Kept in step with
-- migrations/sqlite.

-- The managed part of the configuration (upstreams, clients, scopes, token lifetimes) as TOML,
-- one row per version. The highest version is in effect; every replica polls it. A version is
-- written once: an admin change inserts version + 1, and the primary key makes two concurrent
-- changes on the same base conflict instead of one silently undoing the other. Client secrets
-- appear only as hashes (client_secret_hash), never in plaintext.
CREATE TABLE config_versions (
    version    BIGINT PRIMARY KEY,
    document   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- `seed` for the first version taken from the file, else the admin who made the change.
    author     TEXT NOT NULL
);

-- Every admin change: who, when, what, and the state before and after (JSON). Written in the
-- same transaction as the configuration version it produced (config_version), or alone for
-- changes outside the configuration (an admin withdrawing a user's consent).
CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    before         TEXT,
    after          TEXT,
    config_version BIGINT
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- Both tables are append-only: history is never rewritten.
CREATE FUNCTION herald_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER config_versions_append_only BEFORE UPDATE OR DELETE ON config_versions
    FOR EACH ROW EXECUTE FUNCTION herald_append_only();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION herald_append_only();

-- The admin user list sorts and searches these.
CREATE INDEX users_last_login ON users (last_login_at);
