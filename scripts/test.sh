#!/usr/bin/env bash
# Runs every Herald test: unit, HTTP integration, the store suite on SQLite and PostgreSQL,
# the browser test in headless Chromium, the admin API's schema test and the interop suite.
# Installs or starts what it needs by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every test runs: with CI=true the PostgreSQL and Redis tests fail instead of skipping, so a
# green run never hides a skipped database. The services are started when they are down, and
# the run stops here, loudly, when one cannot be.
export CI=true
fail() { echo "test.sh: $*" >&2; exit 1; }

command -v pg_isready >/dev/null || fail "PostgreSQL's client tools (pg_isready, psql) are missing"
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "test.sh: PostgreSQL is not answering; starting it" >&2
  version=$(ls /etc/postgresql 2>/dev/null | head -1)
  [ -n "$version" ] || fail "no PostgreSQL cluster under /etc/postgresql to start"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || fail "PostgreSQL $version would not start"
  for _ in $(seq 1 40); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL started but does not answer on 127.0.0.1:5432"
fi
# The tests connect as postgres to the database test; make it when the machine lacks it.
if ! psql -h 127.0.0.1 -U postgres -d test -tAc 'SELECT 1' >/dev/null 2>&1; then
  echo "test.sh: creating the database test" >&2
  psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null 2>&1 ||
    runuser -u postgres -- psql -d postgres -c 'CREATE DATABASE test' >/dev/null ||
    fail "cannot create the database test"
fi
psql -h 127.0.0.1 -U postgres -d test -tAc 'SELECT 1' >/dev/null ||
  fail "cannot connect to postgres://postgres@127.0.0.1:5432/test"

# Redis likewise (the Redis session-store test); it keeps nothing on disk.
command -v redis-cli >/dev/null || fail "redis-cli is missing"
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test.sh: Redis is not answering; starting it" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/herald-test-redis.log || fail "Redis would not start"
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || fail "Redis does not answer on 127.0.0.1:6379"

# Unit tests, the HTTP suite (tests/api) and the store suite (tests/store.rs).
cargo test --locked --lib --bins --tests

# The database fault test: PostgreSQL stopped and restarted under load, run alone.
scripts/pg-fault-test.sh

# The deployment files: the systemd unit verified, compose and Kubernetes parsed and checked, the
# binary run as nobody with a read-only configuration, as the Dockerfile runs it.
scripts/deploy-test.sh

# The fuzz targets compile (their long runs are not part of the test command; docs/security.md
# has the command and the figures).
cargo check --locked --manifest-path fuzz/Cargo.toml --bins

# The browser test: a real login in headless Chromium.
scripts/browser-test.sh

# The schema test: the admin API against its own OpenAPI document (schemathesis).
scripts/api-schema-test.sh

# The interop suite: oidc-provider upstream, openid-client, openidconnect and Chromium as clients.
scripts/interop-test.sh
