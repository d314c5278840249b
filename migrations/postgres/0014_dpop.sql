-- Issue 21: DPoP (RFC 9449). Each proof's jti is accepted once per key (the key's RFC 7638
-- thumbprint), across replicas; rows are kept until the proof could no longer be accepted,
-- then purged. A public client's refresh tokens are bound to the key of the proof they were
-- issued with (RFC 9449 §5): refresh_tokens.dpop_jkt. Kept in step with the other database's
-- migrations.
CREATE TABLE dpop_proofs (
    jkt        TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (jkt, jti)
);
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at);
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
