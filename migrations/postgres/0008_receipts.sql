-- Receipts and purposes (issue 16). A consent record becomes a receipt: its decision
-- ('granted', 'denied' or 'withdrawn'), the locale the page was shown in, the exact wording
-- of each scope and purpose shown (JSON), the purposes it decided (JSON) and, for a decision
-- imported from a consent-management platform, where it came from. Kept in step with the
-- other database's migrations.
ALTER TABLE consent_records ADD COLUMN decision TEXT NOT NULL DEFAULT 'granted';
ALTER TABLE consent_records ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
ALTER TABLE consent_records ADD COLUMN wording TEXT NOT NULL DEFAULT '{}';
ALTER TABLE consent_records ADD COLUMN purposes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE consent_records ADD COLUMN source TEXT;
-- The decision's id at the source (a receipt id): dropped when the user is erased, since it
-- leads back to the person.
ALTER TABLE consent_records ADD COLUMN source_reference TEXT;
-- Records written before: an admin's record with nothing allowed was a withdrawal. A user's
-- withdrawal in the consent center was recorded like a denial then (method 'page') and stays
-- 'denied': the two cannot be told apart.
UPDATE consent_records SET decision = CASE
    WHEN allowed <> '' THEN 'granted'
    WHEN method = 'admin' THEN 'withdrawn'
    ELSE 'denied' END;

-- Each user's current decision per purpose, written with the record that made it.
CREATE TABLE purpose_states (
    sub        TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    decision   TEXT NOT NULL,
    version    TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    decided_at BIGINT NOT NULL,
    PRIMARY KEY (sub, purpose)
);

-- The locales asked for at /authorize (ui_locales). The consent page's CSRF token (with the
-- locale it was shown in) is now derived from the browser session's binding, so showing the
-- page writes nothing: auth_requests.consent_csrf is no longer written.
ALTER TABLE auth_requests ADD COLUMN ui_locales TEXT;

-- Single-use links to one user's consent center (digest of the token only).
CREATE TABLE account_links (
    token_hash TEXT PRIMARY KEY,
    sub        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX account_links_sub ON account_links (sub);
