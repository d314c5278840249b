-- Issue 21: resource indicators (RFC 8707) and DPoP-bound codes (RFC 9449 §10). An
-- authorization request's `resource` values (space-separated) go with its code and the refresh
-- tokens of its family, so /token can issue access tokens for those APIs only; its `dpop_jkt`
-- goes with its code, which is then redeemed only with a proof by that key. Kept in step with
-- the other database's migrations.
ALTER TABLE auth_requests ADD COLUMN resources TEXT;
ALTER TABLE auth_requests ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN resources TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT;
