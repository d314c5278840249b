-- Removing an upstream through the admin API (issue 7, checklist F80) revokes the logins made
-- through it, in the database so that every replica sees it at once. Kept in step with
-- migrations/postgres.

-- Set when the context's upstream was removed: the context is never reused for a browser, and
-- no code, refresh token or userinfo call is served from it again.
ALTER TABLE auth_contexts ADD COLUMN revoked_at INTEGER;
-- Removing an upstream finds its contexts (and through them their codes and tokens) by this.
CREATE INDEX auth_contexts_upstream ON auth_contexts (upstream_id);
