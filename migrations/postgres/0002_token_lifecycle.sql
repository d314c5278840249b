-- Token lifecycle for PostgreSQL (issue 5). Kept in step with migrations/sqlite.

-- Refresh tokens, keyed by the SHA-256 digest (hex) of the opaque value. Every rotation adds a
-- row to the family and marks its predecessor rotated; presenting a rotated token again revokes
-- the whole family (RFC 9700 §4.14.2). code_hash is carried through the family so a replayed
-- authorization code revokes every refresh token that descends from it.
CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    sub               TEXT NOT NULL,
    scope             TEXT NOT NULL,
    auth_context_id   TEXT NOT NULL,
    auth_time         BIGINT NOT NULL,
    code_hash         TEXT,
    issued_at         BIGINT NOT NULL,
    -- Idle expiry of this token; never later than family_expires_at.
    expires_at        BIGINT NOT NULL,
    -- Absolute expiry of the family, fixed at the first issue.
    family_expires_at BIGINT NOT NULL,
    rotated_at        BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_code ON refresh_tokens (code_hash);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (sub, client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Access tokens issued at code exchange or by refresh name their refresh family, so revoking
-- the family (reuse, /revoke) reaches them too.
ALTER TABLE access_tokens ADD COLUMN family_id TEXT;
CREATE INDEX access_tokens_family ON access_tokens (family_id);
CREATE INDEX access_tokens_grant ON access_tokens (sub, client_id);
