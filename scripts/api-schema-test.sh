#!/usr/bin/env bash
# The schema test of the admin API: Herald must keep the promises of its own OpenAPI document.
# Runs Herald with the default configuration (a free loopback port, a fresh SQLite database, a
# random HERALD_ADMIN_TOKEN and a client_credentials admin client), checks that every documented
# operation refuses missing and wrong credentials (tests/schema/unauthorized.py), then lets
# schemathesis (PyPI, pinned with its dependencies in tests/schema/requirements.txt, installed in
# a virtualenv under the target dir) send valid and invalid requests generated from the document,
# with a fixed seed and a bounded number of examples, and check every answer against it; a user
# who logged in to the demo app (tests/schema/login.py) gives the users endpoints something to show.
# Fails, printing Herald's log, on any failure. The report lands in artifacts/schema/.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
venv="$target/schemathesis-venv"
requirements=tests/schema/requirements.txt
# A virtualenv made from other requirements is made anew, so the pins are what runs.
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
  echo "api-schema-test.sh: installing schemathesis into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi

cargo build --locked --quiet
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
admin_token=$(random)
ops_secret=$(random)
{
  sed -e "s/127.0.0.1:8080/127.0.0.1:$port/g" \
      -e "s#sqlite://data/herald.db#sqlite://$work/herald.db#" config/herald.toml
  cat <<'EOF'

# A machine client that administers Herald (client_credentials with herald:admin).
[[clients]]
client_id = "ops"
client_name = "Operations"
client_secret_env = "HERALD_SCHEMA_OPS_SECRET"
redirect_uris = []
scopes = ["herald:admin"]
grant_types = ["client_credentials"]

# One generator sends thousands of requests from one address: the rate limit would answer 429s
# (documented, and tested in tests/api/limits.rs) and slow the run to the limit.
[limits]
per_ip_per_second = 0

# A client for schemathesis to delete (the others stay for the other operations).
[[clients]]
client_id = "spare"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid"]
EOF
} > "$work/herald.toml"
HERALD_ADMIN_TOKEN="$admin_token" HERALD_SCHEMA_OPS_SECRET="$ops_secret" \
  "$target/debug/herald" serve --config "$work/herald.toml" > "$work/herald.log" 2>&1 &
herald=$!
trap 'kill $herald 2>/dev/null || true; rm -rf "$work"' EXIT
fail() {
  echo "api-schema-test.sh: $1; Herald's log follows" >&2
  cat "$work/herald.log" >&2
  exit 1
}
base="http://127.0.0.1:$port"
up=""
for _ in $(seq 1 50); do
  curl -sf "$base/healthz" >/dev/null && { up=1; break; }
  sleep 0.2
done
[ -n "$up" ] || fail "Herald did not start"

# Without credentials, or with wrong ones, every operation answers 401.
"$venv/bin/python" tests/schema/unauthorized.py "$base" "$admin_token" ||
  fail "an operation did not refuse a request without valid credentials"

# The admin client's own token administers too.
ops_token=$(curl -sf -u "ops:$ops_secret" -d grant_type=client_credentials -d scope=herald:admin \
  "$base/token" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
  fail "the ops client got no token"
curl -sf -o /dev/null -H "Authorization: Bearer $ops_token" "$base/admin/api/openapi.json" ||
  fail "the ops client's token does not administer"

# A user who logged in to the demo app and allowed consent, for the users endpoints.
"$venv/bin/python" tests/schema/login.py "$base" carol || fail "the demo login failed"
curl -sf -H "Authorization: Bearer $admin_token" "$base/admin/api/users" |
  python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)[0]["sub"]))' > "$work/users.dict" ||
  fail "the demo user is not listed"

# Seed, checks and test data are in tests/schema/schemathesis.toml.
cp tests/schema/schemathesis.toml "$work/"
mkdir -p artifacts/schema
# Hypothesis keeps its caches in the run's directory: nothing in the work tree, nothing carried
# over from an earlier run.
if ! HERALD_ADMIN_TOKEN="$admin_token" HYPOTHESIS_STORAGE_DIRECTORY="$work/hypothesis" \
    "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" \
    run "$base/admin/api/openapi.json" --report junit,har --report-dir artifacts/schema; then
  fail "schemathesis found problems"
fi
