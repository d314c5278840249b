-- A client's refresh_token_grace_period lets a rotated refresh token be used once more within
-- that time (a retry that lost the answer, two tabs at once) instead of revoking its family.
-- Set when that one extra use happened: a second one is a reuse. Kept in step with
-- migrations/postgres.
ALTER TABLE refresh_tokens ADD COLUMN grace_used_at INTEGER;
