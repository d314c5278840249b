-- Issue 18: the authentication context classes an app asked for (`acr_values`), passed on to the
-- upstream and checked against the `acr` it answers. Kept in step with migrations/postgres.
ALTER TABLE auth_requests ADD COLUMN acr_values TEXT;
-- An upstream login Herald started again with prompt=login because the first answer's
-- auth_time was older than the app's max_age: a second old answer is refused (0/1).
ALTER TABLE upstream_logins ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
-- The request's parameters an upstream takes through (`pass_through`, like Auth0's
-- `connection` and `organization`), as a JSON object.
ALTER TABLE auth_requests ADD COLUMN pass_through TEXT;
