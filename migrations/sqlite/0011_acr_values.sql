-- Issue 18: the authentication context classes an app asked for (`acr_values`), passed on to the
-- upstream and checked against the `acr` it answers. Kept in step with migrations/postgres.
ALTER TABLE auth_requests ADD COLUMN acr_values TEXT;
