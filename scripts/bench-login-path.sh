#!/usr/bin/env bash
# The login path (issue 20): Herald's CPU per brokered login and the store statements each login
# runs, for one Herald binary: on SQLite with its `synchronous` at `full` (the default) and
# `normal`, on PostgreSQL, and with the upstream out of process or in it. A benchmark, not a test: results in
# $OUT/login-path.json (OUT defaults to artifacts/bench) and, with PERF=1, a perf profile of one
# more run, made apart from the measured ones, in $OUT/login-path.perf.txt (and a flame graph,
# $OUT/login-path.svg, when inferno is installed).
#
#   scripts/bench-login-path.sh [HERALD_BINARY]       # default: a fresh release build
#
# Each login is a new user: /authorize, the upstream's login form, Herald's callback (upstream
# token + userinfo over HTTP), the consent page and its POST, /token. UPSTREAMS (default "op dev")
# chooses the upstreams, each measured with every store in STORES (default "full normal postgres":
# SQLite with synchronous=full, SQLite with synchronous=normal, and PostgreSQL at PG_URL, default
# postgres://postgres@127.0.0.1:5432, in a database made afresh; PostgreSQL's own CPU is not
# Herald's and is not counted; "full" alone for a binary older than the `synchronous=` parameter):
# - op: panva's oidc-provider as set up for the interop suite (tests/interop/upstream.mjs), in its
#   own Node.js process on LOAD_CPU, so its work is not Herald's; its CPU per login is measured in
#   the same run, and Herald's figure is also given as a fraction of it;
# - dev: Herald's built-in development upstream, whose pages and RS256 ID token are inside
#   Herald's process and so inside Herald's figure.
# PERF_CALL_GRAPH (default fp) is perf's --call-graph: `dwarf` unwinds Herald's own frames too
# (the release build keeps no frame pointers), at the cost of a larger profile; PERF_FREQ (default
# 999) its sampling rate; PERF_KEEP=1 keeps perf.data in $OUT.
# Herald runs on SERVER_CPU (default 1), the driver on LOAD_CPU (default 0); LOGIN_SECONDS
# (default 15) per run, 16 in flight. The profile uses the first upstream and the first store, the
# statement count the first upstream and SQLite.
#
# Statements are counted from sqlx's own per-statement log (`sqlx::query` at debug, JSON) over
# 20 logins made one at a time after a warm-up login; BEGIN/COMMIT are not statements there.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
SECONDS_PER_RUN=${LOGIN_SECONDS:-15}
PORT=18085
UPSTREAM_PORT=18086
BASE="http://127.0.0.1:$PORT"
OUT=${OUT:-artifacts/bench}
RUN=$(mktemp -d)
mkdir -p "$OUT"
UPSTREAM_PID=
trap 'pkill -f "serve --config $RUN/" 2>/dev/null || true; [ -z "$UPSTREAM_PID" ] || kill "$UPSTREAM_PID" 2>/dev/null || true; rm -rf "$RUN"' EXIT

if [ $# -ge 1 ]; then
  HERALD=$1
else
  cargo build --locked --release --quiet --bin herald
  HERALD=${CARGO_TARGET_DIR:-target}/release/herald
fi
cargo build --locked --release --quiet --example bench-driver
DRIVER=${CARGO_TARGET_DIR:-target}/release/examples/bench-driver

. scripts/bench-config.sh
upstream_config() { # upstream_config UPSTREAM
  if [ "$1" = op ]; then
    cat <<EOF
[[upstreams]]
id = "op"
kind = "oidc"
issuer = "http://127.0.0.1:$UPSTREAM_PORT"
client_id = "herald"
client_secret = "upstream-secret-for-herald-0123456789"
scopes = ["openid", "profile", "email"]
userinfo = true
EOF
  else
    echo "$DEV_UPSTREAM"
  fi
}

# ALG (default: Herald's, RS256) signs the client's ID and access tokens (a client's
# id_token_signed_response_alg is its access tokens' too): ES256 or EdDSA show the login path
# without RSA's two signatures.
client_algs() {
  if [ -n "${ALG:-}" ]; then
    printf 'id_token_signed_response_alg = "%s"\n' "$ALG"
  fi
}

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
database_url() { # database_url STORE UPSTREAM
  case $1 in
    postgres) echo "$PG_URL/herald_login_path_$2" ;;
    full) echo "sqlite://$RUN/herald-$1-$2.db" ;;
    *) echo "sqlite://$RUN/herald-$1-$2.db?synchronous=$1" ;;
  esac
}

config() { # config STORE UPSTREAM
  bench_config "$BASE" "$(database_url "$1" "$2")" "$(upstream_config "$2")" "$(client_algs)"
}

start() { # start STORE UPSTREAM LOG [RUST_LOG]
  if [ "$1" = postgres ]; then
    psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS herald_login_path_$2" \
      -c "CREATE DATABASE herald_login_path_$2" ||
      { echo "bench-login-path.sh: PostgreSQL at $PG_URL is not answering" >&2; exit 1; }
  fi
  config "$1" "$2" >"$RUN/herald-$1-$2.toml"
  RUST_LOG=${4:-warn} HERALD_LOG_FORMAT=json taskset -c "$SERVER_CPU" "$HERALD" serve \
    --config "$RUN/herald-$1-$2.toml" >"$3" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-login-path.sh: Herald did not start; its log:" >&2
  cat "$3" >&2
  exit 1
}

stop() { kill "$PID" && wait "$PID" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches (voluntary and not) of all the process's threads living now: a thread that
# ends during a run takes its count with it, so the figure is a floor.
switches() { { cat /proc/"$1"/task/*/status 2>/dev/null || true; } | awk '/ctxt_switches/ {n += $2} END {print n}'; }
logins() { taskset -c "$LOAD_CPU" "$DRIVER" logins --base "$BASE" "$@"; }

# The out-of-process upstream: the interop suite's oidc-provider, on LOAD_CPU.
start_upstream() {
  [ -d tests/interop/node_modules ] ||
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  NODE_ENV=production UPSTREAM_PORT=$UPSTREAM_PORT taskset -c "$LOAD_CPU" \
    node tests/interop/upstream.mjs "$BASE" >"$RUN/upstream.log" 2>&1 &
  UPSTREAM_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/.well-known/openid-configuration" \
      2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-login-path.sh: the oidc-provider upstream did not start; its log:" >&2
  cat "$RUN/upstream.log" >&2
  exit 1
}

results=()
for upstream in ${UPSTREAMS:-op dev}; do
  if [ "$upstream" = op ] && [ -z "$UPSTREAM_PID" ]; then start_upstream; fi
  for sync in ${STORES:-full normal postgres}; do
    start "$sync" "$upstream" "$RUN/$sync-$upstream.log"
    logins --concurrency 16 --warmup 2 --duration 3 >/dev/null
    up_before=0 up_after=0
    before=$(cpu_ticks "$PID")
    switches_before=$(switches "$PID")
    if [ "$upstream" = op ]; then up_before=$(cpu_ticks "$UPSTREAM_PID"); fi
    json=$(logins --concurrency 16 --duration "$SECONDS_PER_RUN")
    after=$(cpu_ticks "$PID")
    switches_after=$(switches "$PID")
    if [ "$upstream" = op ]; then up_after=$(cpu_ticks "$UPSTREAM_PID"); fi
    rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
    stop
    results+=("$(python3 - "$json" "$before" "$after" "$(getconf CLK_TCK)" "$sync" "$upstream" \
      "$up_before" "$up_after" "$rss_kb" "$((switches_after - switches_before))" <<'EOF'
import json, sys
run = json.loads(sys.argv[1])["logins"]
before, after, hz, sync, upstream = (float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]),
                                     sys.argv[5], sys.argv[6])
up_before, up_after = float(sys.argv[7]), float(sys.argv[8])
if run["ok"] == 0 or run["errors"]:
    sys.exit(f"bench-login-path.sh: the {upstream} {sync} run had {run['ok']} logins and "
             f"{run['errors']} errors")
cpu_ms = (after - before) * 1000 / hz / run["ok"]
store = "postgres" if sync == "postgres" else f"sqlite, synchronous={sync}"
import os
out = {"upstream": upstream, "store": store, "alg": os.environ.get("ALG") or "RS256",
       "logins": run["ok"], "per_s": run["per_s"],
       "p50_ms": run["p50_ms"], "p99_ms": run["p99_ms"], "cpu_ms_per_login": round(cpu_ms, 3),
       "rss_after_kb": int(sys.argv[9]),
       "context_switches_per_login": round(int(sys.argv[10]) / run["ok"], 1)}
if upstream == "op":
    up_ms = (up_after - up_before) * 1000 / hz / run["ok"]
    out["upstream_cpu_ms_per_login"] = round(up_ms, 3)
    out["herald_to_upstream"] = round(cpu_ms / up_ms, 3)
print(json.dumps(out))
EOF
)")
  done
done
# The profile is a run of its own: perf's sampling would inflate the CPU figures above.
PROFILED=$(set -- ${UPSTREAMS:-op dev}; echo "$1")
PROFILED_STORE=$(set -- ${STORES:-full normal postgres}; echo "$1")
if [ "${PERF:-0}" = 1 ]; then
  start "$PROFILED_STORE" "$PROFILED" "$RUN/perf.log"
  logins --concurrency 16 --warmup 2 --duration 3 >/dev/null
  perf record -F "${PERF_FREQ:-999}" --call-graph "${PERF_CALL_GRAPH:-fp}" -p "$PID" -o "$RUN/perf.data" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
  logins --concurrency 16 --duration "$SECONDS_PER_RUN" >/dev/null
  stop
  sleep 1
  perf report -i "$RUN/perf.data" --children --sort sym -g none >"$RUN/perf.txt" 2>/dev/null
  [ "${PERF_KEEP:-0}" = 1 ] && cp "$RUN/perf.data" "$OUT/login-path.perf.data"
  grep '%' "$RUN/perf.txt" | sed -n 1,80p >"$OUT/login-path.perf.txt"
  # A flame graph, when inferno is installed (`cargo install inferno`).
  if command -v inferno-flamegraph >/dev/null; then
    perf script -i "$RUN/perf.data" 2>/dev/null | inferno-collapse-perf |
      inferno-flamegraph --minwidth 1 --title "Herald, login path ($PROFILED upstream, $PROFILED_STORE)" \
        >"$OUT/login-path.svg"
  fi
fi

# Statements per login, counted by sqlx itself.
start full "$PROFILED" "$RUN/statements.log" "warn,sqlx::query=debug"
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

# RSS after many logins (RSS_LOGINS, e.g. 100000, within RSS_SECONDS, default 3600): Herald on a
# fresh SQLite database (`full`) with the first upstream; VmRSS two seconds after start, then
# after the logins (16 in flight). Fewer logins than asked is an error, not a smaller figure.
# At both points also the anonymous and file-backed parts of the RSS and, when gdb is installed,
# SQLite's own heap (its memory-used statistic, `sqlite3Stat`: every connection's page cache,
# schema and prepared statements), read from the process with gdb, which stops it for a moment.
rss=null
if [ -n "${RSS_LOGINS:-}" ]; then
  memory() { # memory PID -> JSON
    local heap=null
    if command -v gdb >/dev/null; then
      heap=$(timeout 60 gdb -p "$1" -batch -ex 'p ((long long *) &sqlite3Stat)[0]' 2>/dev/null |
        sed -n 's/^\$1 = \([0-9]*\)$/\1/p')
      heap=${heap:-null}
    fi
    awk -v heap="$heap" '/^(VmRSS|RssAnon|RssFile)/ {kb[$1] = $2}
      END {printf "{\"rss_kb\":%d,\"anon_kb\":%d,\"file_kb\":%d,\"sqlite_heap_bytes\":%s}\n",
        kb["VmRSS:"], kb["RssAnon:"], kb["RssFile:"], heap}' "/proc/$1/status"
  }
  rm -f "$RUN/herald-full-$PROFILED.db"*
  start full "$PROFILED" "$RUN/rss.log"
  sleep 2
  idle=$(memory "$PID")
  json=$(logins --concurrency 16 --max "$RSS_LOGINS" --duration "${RSS_SECONDS:-3600}")
  after=$(memory "$PID")
  stop
  rss=$(python3 - "$json" "$idle" "$after" "$RSS_LOGINS" <<'EOF'
import json, sys
run = json.loads(sys.argv[1])["logins"]
idle, after, wanted = json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
if run["ok"] < wanted or run["errors"]:
    sys.exit(f"bench-login-path.sh: {run['ok']} of {wanted} logins, {run['errors']} errors")
print(json.dumps({"logins": run["ok"], "idle_kb": idle["rss_kb"], "after_kb": after["rss_kb"],
                  "after_to_idle": round(after["rss_kb"] / idle["rss_kb"], 2),
                  "idle": idle, "after": after}))
EOF
)
fi

python3 - "$OUT/login-path.json" "$statements" "$rss" "${results[@]}" <<'EOF'
import json, sys
out = {"runs": [json.loads(r) for r in sys.argv[4:]], "statements": json.loads(sys.argv[2]),
       "rss_after_logins": json.loads(sys.argv[3])}
json.dump(out, open(sys.argv[1], "w"), indent=2)
for r in out["runs"]:
    upstream = (f"; the upstream {r['upstream_cpu_ms_per_login']} ms, Herald "
                f"{r['herald_to_upstream']}x of it" if "upstream_cpu_ms_per_login" in r else "")
    print(f"upstream={r['upstream']} {r['store']} {r.get('alg', 'RS256')}: {r['per_s']} logins/s, "
          f"p50 {r['p50_ms']} ms, {r['cpu_ms_per_login']} ms of Herald's CPU per login"
          f"{upstream}; {r.get('context_switches_per_login')} context switches per login in Herald "
          f"({r['logins']} logins)")
s = out["statements"]
print(f"statements per login: {s['per_login']} ({s['writes_per_login']} writes)")
r = out["rss_after_logins"]
if r:
    print(f"RSS: {r['idle_kb']} kB idle, {r['after_kb']} kB after {r['logins']} logins "
          f"({r['after_to_idle']}x)")
    for when in ("idle", "after"):
        m = r[when]
        heap = m["sqlite_heap_bytes"]
        heap = "not read" if heap is None else f"{heap // 1024} kB"
        print(f"  {when}: {m['anon_kb']} kB anonymous, {m['file_kb']} kB file-backed; SQLite's heap {heap}")
EOF
