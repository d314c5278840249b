-- Issue 17, from its review: the upstream subject each login was made with, so that unlinking an
-- identity ends the logins made through it, and a back-channel logout naming a subject ends
-- exactly that account's logins. Logins stored before were made with the identity their user was
-- created with (linking arrived with 0010), and get it. Kept in step with
-- migrations/sqlite.
ALTER TABLE auth_contexts ADD COLUMN upstream_subject TEXT;
CREATE INDEX auth_contexts_upstream_subject ON auth_contexts (upstream_id, upstream_subject);
UPDATE auth_contexts SET upstream_subject = (
    SELECT users.upstream_subject FROM users
    WHERE users.sub = auth_contexts.sub AND users.upstream_id = auth_contexts.upstream_id
);
