#!/usr/bin/env bash
# The login path (issue 20): Herald's CPU per brokered login and the store statements each login
# runs, for one Herald binary, with SQLite's `synchronous` at `full` (the default) and `normal`.
# A benchmark, not a test: results in artifacts/bench/login-path.json (and, with PERF=1, a perf
# profile of one more `full` run, made apart from the measured ones, in
# artifacts/bench/login-path.perf.txt). SYNC_MODES="full" measures only the default (a binary
# older than the `synchronous=` parameter knows no other).
#
#   scripts/bench-login-path.sh [HERALD_BINARY]       # default: a fresh release build
#
# Each login is a new user through the in-process development upstream: /authorize, the upstream's
# form, Herald's callback (upstream token + userinfo over HTTP), the consent page and its POST,
# /token. Herald runs on SERVER_CPU (default 1), the driver on LOAD_CPU (default 0);
# LOGIN_SECONDS (default 15) per run, 16 in flight. The development upstream's own work (its
# pages, one RS256 ID token per login) is inside Herald's process and so inside the CPU figure.
#
# Statements are counted from sqlx's own per-statement log (`sqlx::query` at debug, JSON) over
# 20 logins made one at a time after a warm-up login; BEGIN/COMMIT are not statements there.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
SECONDS_PER_RUN=${LOGIN_SECONDS:-15}
PORT=18085
BASE="http://127.0.0.1:$PORT"
OUT=artifacts/bench
RUN=$(mktemp -d)
mkdir -p "$OUT"
trap 'pkill -f "serve --config $RUN/" 2>/dev/null || true; rm -rf "$RUN"' EXIT

if [ $# -ge 1 ]; then
  HERALD=$1
else
  cargo build --locked --release --quiet --bin herald
  HERALD=${CARGO_TARGET_DIR:-target}/release/herald
fi
cargo build --locked --release --quiet --example bench-driver
DRIVER=${CARGO_TARGET_DIR:-target}/release/examples/bench-driver

config() { # config SYNCHRONOUS
  cat <<EOF
issuer = "$BASE"
listen = "127.0.0.1:$PORT"
database_url = "sqlite://$RUN/herald-$1.db$( [ "$1" = full ] || echo "?synchronous=$1")"
limits = { per_ip_per_second = 0 }

[[upstreams]]
id = "dev"
kind = "dev"
userinfo = true

[[upstreams.attributes]]
claim = "https://example\\\\.com/groups"
source = "id_token"
type = "string_array"

[[upstreams.mappings]]
from = "https://example\\\\.com/groups"
to = "groups"

[[clients]]
client_id = "bench"
client_secret = "bench-secret"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "profile", "email", "groups"]

[scopes.groups]
description = "Your groups"
claims = ["groups"]
EOF
}

start() { # start SYNCHRONOUS LOG [RUST_LOG]
  config "$1" >"$RUN/herald-$1.toml"
  RUST_LOG=${3:-warn} HERALD_LOG_FORMAT=json taskset -c "$SERVER_CPU" "$HERALD" serve \
    --config "$RUN/herald-$1.toml" >"$2" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-login-path.sh: Herald did not start; its log:" >&2
  cat "$2" >&2
  exit 1
}

stop() { kill "$PID" && wait "$PID" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
logins() { taskset -c "$LOAD_CPU" "$DRIVER" logins --base "$BASE" "$@"; }

results=()
for sync in ${SYNC_MODES:-full normal}; do
  start "$sync" "$RUN/$sync.log"
  logins --concurrency 16 --warmup 2 --duration 3 >/dev/null
  before=$(cpu_ticks)
  json=$(logins --concurrency 16 --duration "$SECONDS_PER_RUN")
  after=$(cpu_ticks)
  stop
  results+=("$(python3 - "$json" "$before" "$after" "$(getconf CLK_TCK)" "$sync" <<'EOF'
import json, sys
run = json.loads(sys.argv[1])["logins"]
before, after, hz, sync = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
if run["ok"] == 0 or run["errors"]:
    sys.exit(f"bench-login-path.sh: the {sync} run had {run['ok']} logins and {run['errors']} errors")
cpu_ms = (after - before) * 1000 / hz / run["ok"]
print(json.dumps({"synchronous": sync, "logins": run["ok"], "per_s": run["per_s"],
                  "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"],
                  "cpu_ms_per_login": round(cpu_ms, 3)}))
EOF
)")
done
# The profile is a run of its own: perf's sampling would inflate the CPU figures above.
if [ "${PERF:-0}" = 1 ]; then
  start full "$RUN/perf.log"
  logins --concurrency 16 --warmup 2 --duration 3 >/dev/null
  perf record -F 999 -g -p "$PID" -o "$RUN/perf.data" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
  logins --concurrency 16 --duration "$SECONDS_PER_RUN" >/dev/null
  stop
  sleep 1
  perf report -i "$RUN/perf.data" --children --sort sym -g none >"$RUN/perf.txt" 2>/dev/null
  grep '%' "$RUN/perf.txt" | sed -n 1,80p >"$OUT/login-path.perf.txt"
fi

# Statements per login, counted by sqlx itself.
start full "$RUN/statements.log" "warn,sqlx::query=debug"
logins --concurrency 1 --max 1 --duration 30 >/dev/null
mark=$(wc -l <"$RUN/statements.log")
logins --concurrency 1 --max 20 --duration 60 >/dev/null
sleep 0.5
stop
statements=$(tail -n +"$((mark + 1))" "$RUN/statements.log" | python3 -c '
import collections, json, sys
counts = collections.Counter()
for line in sys.stdin:
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    if entry.get("target") == "sqlx::query":
        counts[entry.get("summary", "?")] += 1
total = sum(counts.values())
if total == 0:
    sys.exit("bench-login-path.sh: no statement was logged")
writes = sum(n for s, n in counts.items() if s.split()[0] in ("INSERT", "UPDATE", "DELETE"))
print(json.dumps({"per_login": total / 20, "writes_per_login": writes / 20,
                  "by_statement": {s: n / 20 for s, n in counts.most_common()}}))
')

python3 - "$OUT/login-path.json" "$statements" "${results[@]}" <<'EOF'
import json, sys
out = {"runs": [json.loads(r) for r in sys.argv[3:]], "statements": json.loads(sys.argv[2])}
json.dump(out, open(sys.argv[1], "w"), indent=2)
for r in out["runs"]:
    print(f"synchronous={r['synchronous']}: {r['per_s']} logins/s, p50 {r['p50_ms']} ms, "
          f"{r['cpu_ms_per_login']} ms of Herald's CPU per login ({r['logins']} logins)")
s = out["statements"]
print(f"statements per login: {s['per_login']} ({s['writes_per_login']} writes)")
EOF
