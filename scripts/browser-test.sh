#!/usr/bin/env bash
# The browser test: runs Herald with the default configuration (on a free loopback port, a fresh
# database) and logs in through it in Debian's headless Chromium, driven by playwright-core; then
# an admin edits a mapping in the admin pages and the next login carries the new claim.
# Installs Chromium (apt) and playwright-core (npm, pinned by tests/browser/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-test.sh: installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

cargo build --locked --quiet
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
sed -e "s/127.0.0.1:8080/127.0.0.1:$port/g" \
    -e "s#sqlite://data/herald.db#sqlite://$work/herald.db#" config/herald.toml > "$work/herald.toml"
# The admin API's bootstrap token: the login test asks it for an account link.
HERALD_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
export HERALD_ADMIN_TOKEN
# A key-encryption key, as production has: the admin test types an upstream's secret, which
# Herald stores only encrypted with it.
HERALD_KEY_ENCRYPTION_KEY=$("${CARGO_TARGET_DIR:-target}/debug/herald" keys gen-kek)
export HERALD_KEY_ENCRYPTION_KEY
"${CARGO_TARGET_DIR:-target}/debug/herald" serve --config "$work/herald.toml" > "$work/herald.log" 2>&1 &
herald=$!
trap 'kill $herald 2>/dev/null || true' EXIT
up=""
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && { up=1; break; }
  sleep 0.2
done
if [ -z "$up" ]; then
  echo "browser-test.sh: Herald did not start; its log follows" >&2
  cat "$work/herald.log" >&2
  exit 1
fi
mkdir -p artifacts/browser
# The admin test runs second: it changes the dev upstream's mappings.
if ! { node tests/browser/login.mjs "http://127.0.0.1:$port" artifacts/browser &&
       node tests/browser/admin.mjs "http://127.0.0.1:$port" artifacts/browser; }; then
  echo "browser-test.sh: failed; Herald's log follows" >&2
  cat "$work/herald.log" >&2
  exit 1
fi
