-- Herald's schema for SQLite. Kept in step with migrations/postgres: same tables, same columns,
-- same meaning. Timestamps are UTC Unix seconds. Bearer secrets (codes, states) are stored as
-- SHA-256 digests only.

-- Signing keys; the private part is encrypted at rest unless encryption = 'none'.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    encryption   TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at   INTEGER,
    expires_at   INTEGER
);

-- One row per (upstream, upstream subject): the account key is never the email address.
CREATE TABLE users (
    sub              TEXT PRIMARY KEY,
    upstream_id      TEXT NOT NULL,
    upstream_subject TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_login_at    INTEGER NOT NULL,
    last_context     TEXT,
    UNIQUE (upstream_id, upstream_subject)
);

-- Authorization requests in flight, from /authorize until the redirect back to the client.
CREATE TABLE auth_requests (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    scope           TEXT NOT NULL,
    state           TEXT,
    nonce           TEXT,
    code_challenge  TEXT,
    prompt          TEXT,
    max_age         INTEGER,
    login_hint      TEXT,
    upstream_hint   TEXT,
    browser_binding TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    sub             TEXT,
    auth_context_id TEXT,
    auth_time       INTEGER,
    consent_csrf    TEXT,
    decided_at      INTEGER
);
CREATE INDEX auth_requests_expires ON auth_requests (expires_at);

-- The relying-party side of an upstream login: state (digest), nonce and PKCE verifier.
CREATE TABLE upstream_logins (
    state_hash      TEXT PRIMARY KEY,
    auth_request_id TEXT NOT NULL,
    upstream_id     TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    pkce_verifier   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX upstream_logins_expires ON upstream_logins (expires_at);

-- Authentication contexts built from upstream claims, reused for userinfo and refresh.
CREATE TABLE auth_contexts (
    id          TEXT PRIMARY KEY,
    sub         TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    context     TEXT NOT NULL,
    auth_time   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX auth_contexts_sub ON auth_contexts (sub);

-- Current consent per (user, app).
CREATE TABLE grants (
    sub            TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    scope_versions TEXT NOT NULL,
    granted_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (sub, client_id)
);

-- Proof of consent: append-only, never updated or deleted by Herald.
CREATE TABLE consent_records (
    id            TEXT PRIMARY KEY,
    sub           TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    allowed       TEXT NOT NULL,
    denied        TEXT NOT NULL,
    text_versions TEXT NOT NULL,
    method        TEXT NOT NULL,
    decided_at    INTEGER NOT NULL
);
CREATE INDEX consent_records_sub ON consent_records (sub, decided_at);

-- Authorization codes (digest only); consumed_at makes them single use.
CREATE TABLE authorization_codes (
    code_hash          TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    sub                TEXT NOT NULL,
    scope              TEXT NOT NULL,
    nonce              TEXT,
    code_challenge     TEXT,
    auth_context_id    TEXT NOT NULL,
    auth_time          INTEGER NOT NULL,
    auth_time_required INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    consumed_at        INTEGER
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- Issued access tokens by jti, so they can be revoked.
CREATE TABLE access_tokens (
    jti             TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    sub             TEXT NOT NULL,
    scope           TEXT NOT NULL,
    auth_context_id TEXT NOT NULL,
    code_hash       TEXT,
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);
CREATE INDEX access_tokens_code ON access_tokens (code_hash);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

-- Browser sessions (tower-sessions records as JSON).
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    record     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
