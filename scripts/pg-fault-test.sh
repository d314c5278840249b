#!/usr/bin/env bash
# The database fault test: stops the machine's PostgreSQL under load and starts it again
# (tests/api/pg_restart.rs). It stops the database every other PostgreSQL test uses, so it runs
# alone, after them; scripts/test.sh calls it. Needs root or the cluster's owner (pg_ctlcluster).
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true
fail() { echo "pg-fault-test.sh: $*" >&2; exit 1; }
command -v pg_ctlcluster >/dev/null || fail "pg_ctlcluster is missing (postgresql-common)"
pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL is not answering before the test"
status=0
cargo test --locked --test api pg_restart -- --ignored --nocapture || status=$?
# Whatever the test did, leave the database answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  version=$(ls /etc/postgresql | head -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 40); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL did not come back after the test"
fi
exit "$status"
