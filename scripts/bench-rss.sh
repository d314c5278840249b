#!/usr/bin/env bash
# Idle RSS of `herald serve` with the default configuration plus CLIENTS (default 10) confidential
# clients whose secrets are written in the file (argon2-hashed at start), and RSS after one token
# request that verifies such a secret. Prints kB, with the resident pages split into anonymous
# memory (heap, stacks) and file-backed pages (mostly Herald's own executable, shared and
# evictable). Usage: scripts/bench-rss.sh [--debug]  (default: release); HERALD_BIN=PATH measures
# that binary instead of building one (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release; flag=--release
[ "${1:-}" = "--debug" ] && { profile=debug; flag=; }
[ -n "${HERALD_BIN:-}" ] || cargo build --locked -q $flag
bin=${HERALD_BIN:-${CARGO_TARGET_DIR:-target}/$profile/herald}
# What was measured: the profile built, or the binary given (bench.sh parses this line, and
# never gives one).
what="profile=$profile"
[ -z "${HERALD_BIN:-}" ] || what="binary=$HERALD_BIN"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
sed -e "s/127.0.0.1:8080/127.0.0.1:$port/g" -e "s#sqlite://data/herald.db#sqlite://$work/h.db#" \
  config/herald.toml > "$work/h.toml"
for i in $(seq 1 "${CLIENTS:-10}"); do
  printf '\n[[clients]]\nclient_id = "c%s"\nclient_secret = "a-person-chosen-secret-%s"\nredirect_uris = []\nscopes = ["api"]\ngrant_types = ["client_credentials"]\n' "$i" "$i" >> "$work/h.toml"
done
printf '\n[scopes.api]\ndescription = "API"\n' >> "$work/h.toml"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
"$bin" serve --config "$work/h.toml" > "$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
sleep 2
idle=$(rss $pid)
code=$(curl -s -o /dev/null -w '%{http_code}' -u c1:a-person-chosen-secret-1 \
  -d grant_type=client_credentials "http://127.0.0.1:$port/token")
[ "$code" = 200 ] || { echo "bench-rss.sh: /token answered $code" >&2; cat "$work/log" >&2; exit 1; }
sleep 1
anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
file=$(awk '/^RssFile/ {print $2}' "/proc/$pid/status")
echo "$what clients=${CLIENTS:-10} idle_rss_kb=$idle rss_after_one_token_kb=$(rss $pid) anon_kb=$anon file_kb=$file"
