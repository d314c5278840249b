-- Issue 17: a user may hold several upstream identities (linking by verified email, or by an
-- admin), and a user may exist before their first login (created by an admin, or imported).
-- `identities` is where a login finds its user. The users table keeps the identity the user
-- was created with in (upstream_id, upstream_subject): the lock a concurrent first login waits
-- on. A user created without one, or whose first identity was unlinked, holds ('', sub) there.
-- Kept in step with migrations/sqlite.
CREATE TABLE identities (
    upstream_id TEXT NOT NULL,
    subject     TEXT NOT NULL,
    sub         TEXT NOT NULL,
    linked_at   BIGINT NOT NULL,
    PRIMARY KEY (upstream_id, subject)
);
CREATE INDEX identities_sub ON identities (sub);
INSERT INTO identities (upstream_id, subject, sub, linked_at)
    SELECT upstream_id, upstream_subject, sub, created_at FROM users;

-- The upstream session a login belongs to (`sid` of the upstream's ID token): an OpenID Connect
-- back-channel logout from the upstream names it. And the upstream's refresh token, sealed with
-- the key-encryption key (`refresh_upstream`), with which Herald refreshes the context.
ALTER TABLE auth_contexts ADD COLUMN upstream_sid TEXT;
ALTER TABLE auth_contexts ADD COLUMN upstream_refresh TEXT;
-- Until when one request holds the right to refresh the context at its upstream (a lease, so
-- that two requests never spend the same upstream refresh token).
ALTER TABLE auth_contexts ADD COLUMN refreshing_until BIGINT;
CREATE INDEX auth_contexts_upstream_sid ON auth_contexts (upstream_sid);
