-- Issue 21: pushed authorization requests (RFC 9126). Each is kept under the SHA-256 digest of
-- its request_uri's random part, for the client that pushed it, until it is used once or
-- expires. Kept in step with the other database's migrations.
CREATE TABLE pushed_requests (
    uri_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at);
