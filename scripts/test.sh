#!/usr/bin/env bash
# Runs every Herald test: unit, HTTP integration, the store suite on SQLite and PostgreSQL,
# the browser test in headless Chromium, the admin API's schema test and the interop suite.
# Installs or starts what it needs by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL runs on every developer machine and in CI; start it if it has stopped.
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "test.sh: PostgreSQL is not answering; starting it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 20); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
fi

# Redis likewise (the Redis session-store test); it keeps nothing on disk.
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test.sh: Redis is not answering; starting it" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/herald-test-redis.log || true
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

# Unit tests, the HTTP suite (tests/api) and the store suite (tests/store.rs).
cargo test --locked --lib --bins --tests

# The fuzz targets compile (their long runs are not part of the test command; docs/security.md
# has the command and the figures).
cargo check --locked --manifest-path fuzz/Cargo.toml --bins

# The browser test: a real login in headless Chromium.
scripts/browser-test.sh

# The schema test: the admin API against its own OpenAPI document (schemathesis).
scripts/api-schema-test.sh

# The interop suite: oidc-provider upstream, openid-client, openidconnect and Chromium as clients.
scripts/interop-test.sh
