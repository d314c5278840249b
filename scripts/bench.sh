#!/usr/bin/env bash
# Herald's benchmark harness (issue 9; see BENCHMARKS.md). One run measures, on pinned cores:
#   1. the raw signing rate per algorithm (criterion, benches/signing.rs) and the claims benches;
#   2. Herald's /token: client_credentials (wrk, when this build supports it) and
#      authorization_code (benches/driver, one pre-minted code per request), p50/p99, with the
#      discovery document's latency probed while /token is saturated;
#   3. oidc-provider (pinned in benches/oidc-provider) under the same client_credentials load,
#      RS256 and ES256;
#   4. full brokered logins through the development upstream, and Herald's CPU time per login;
#   5. idle RSS, RSS after BENCH_LOGINS logins, and /token with BENCH_ROWS stored rows per table
#      against an empty store, on SQLite and PostgreSQL;
#   6. the login path (scripts/bench-login-path.sh): Herald's CPU per login with the upstream out
#      of process (oidc-provider) and in it, the upstream's own CPU per login, statements per
#      login; and idle RSS with ten argon2-hashed client secrets (scripts/bench-rss.sh).
# The whole sequence runs BENCH_RUNS times (default 3); every figure of the summary is the median
# of the runs with their range. Results: artifacts/bench/run-K/*.json per run,
# artifacts/bench/summary.md. Not part of scripts/test.sh.
#
# Environment: SERVER_CPU (default 1) runs every server and criterion; LOAD_CPU (default 0) runs
# wrk and the driver. BENCH_DURATION seconds per load run (10), BENCH_LOGINS (10000),
# BENCH_ROWS (1000000), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432), BENCH_SKIP_PG=1,
# BENCH_SKIP_MICRO=1 (no criterion; for trying the harness out only), BENCH_LOGIN_SECONDS (240:
# the time the BENCH_LOGINS logins must fit in), BENCH_PATH_SECONDS (15: seconds per login-path run),
# BENCH_RUNS (3).
#
# It fails loudly: a measurement that cannot be made stops the run with the reason (nothing is
# recorded as "skipped"); leaving PostgreSQL or criterion out must be asked for, and is written
# into machine.txt and the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
DURATION=${BENCH_DURATION:-10}
RUNS=${BENCH_RUNS:-3}
LOGINS=${BENCH_LOGINS:-10000}
LOGIN_SECONDS=${BENCH_LOGIN_SECONDS:-240}
ROWS=${BENCH_ROWS:-1000000}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
PORT=18080
OP_PORT=18090
BASE="http://127.0.0.1:$PORT"
BENCH_OUT=artifacts/bench
OUT=$BENCH_OUT
RUN="$BENCH_OUT/scratch"
DRIVER=${CARGO_TARGET_DIR:-target}/release/examples/bench-driver
HERALD=${CARGO_TARGET_DIR:-target}/release/herald
export BENCH_LUA_DIR="$PWD/benches/wrk"
BASIC=$(printf 'bench:bench-secret' | base64)

rm -rf "$RUN" "$BENCH_OUT"/run-* && mkdir -p "$RUN"
rm -f "$BENCH_OUT"/*.json "$BENCH_OUT"/*.txt "$BENCH_OUT"/*.md
log() { printf '\n== %s (%s)\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }
on_server() { taskset -c "$SERVER_CPU" "$@"; }
on_load() { taskset -c "$LOAD_CPU" "$@"; }

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap stop_server EXIT

# Waits for an HTTP 200 from $1, up to 30 s.
wait_http() {
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "bench.sh: $1 did not come up" >&2
  return 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# User + system CPU time of a process in milliseconds (clock ticks from /proc/PID/stat).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }

# wrk pinned to the load core; the JSON line its Lua `done` hook prints.
wrk_json() { # wrk_json SCRIPT URL [wrk options...]
  local script=$1 url=$2
  shift 2
  local json
  json=$(on_load timeout $((DURATION + 30)) wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" --timeout 5s \
    -s "benches/wrk/$script" "$@" "$url" | sed -n 's/^JSON //p')
  [ -n "$json" ] || die "wrk measured nothing at $url ($script)"
  jq -e '.ok_per_s > 0' <<<"$json" >/dev/null || die "no successful request at $url: $json"
  echo "$json"
}

# ---------------------------------------------------------------------------------------------
log "tools and build"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd benches/oidc-provider && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
cargo build --release --locked --bin herald --example bench-driver
cargo bench --locked --bench signing --bench claims --no-run 2>&1 | tail -1

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (src modified)')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores visible)"
  echo "memory: $(free -m | awk '/^Mem/ {print $2}') MiB"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "node: $(node --version); oidc-provider $(node -p "require('./benches/oidc-provider/node_modules/oidc-provider/package.json').version")"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "postgres: $(psql --version)"
  echo "pinning: servers and criterion on CPU $SERVER_CPU, wrk and driver on CPU $LOAD_CPU"
  echo "runs: $RUNS"
  echo "loadavg at start: $(cat /proc/loadavg)"
  [ "${BENCH_SKIP_PG:-0}" = 1 ] && echo "left out on request: PostgreSQL (BENCH_SKIP_PG=1)"
  [ "${BENCH_SKIP_MICRO:-0}" = 1 ] && echo "left out on request: criterion (BENCH_SKIP_MICRO=1)"
  true
} >"$BENCH_OUT/machine.txt"
cat "$BENCH_OUT/machine.txt" >&2

# One run of every measurement, into $OUT.
measure() {
rm -rf "$RUN/sqlite" && mkdir -p "$RUN/sqlite"
# ---------------------------------------------------------------------------------------------
if [ "${BENCH_SKIP_MICRO:-0}" != 1 ]; then
log "1. signing ceiling and claims micro-benchmarks (criterion, CPU $SERVER_CPU)"
on_server timeout 300 cargo bench --locked --bench signing -- --noplot 2>&1 | grep -E '^sign|time:|thrpt:' >&2
on_server timeout 300 cargo bench --locked --bench claims -- --noplot 2>&1 | grep -E 'time:|^[A-Za-z]' | grep -v -E 'Warning|Benchmarking|Found' >&2
{
  printf '{'
  sep=
  for alg in RS256 ES256 EdDSA; do
    for impl in herald jsonwebtoken; do
      ns=$(jq '.mean.point_estimate' "${CARGO_TARGET_DIR:-target}/criterion/sign-$alg/$impl/new/estimates.json")
      printf '%s"%s_%s":%s' "$sep" "$alg" "$impl" "$(awk -v ns="$ns" 'BEGIN {printf "%.0f", 1e9 / ns}')"
      sep=,
    done
  done
  printf '}\n'
} >"$OUT/signing.json"
CRITERION=${CARGO_TARGET_DIR:-target}/criterion
find "$CRITERION" -path '*/new/estimates.json' ! -path '*sign-*' | while read -r f; do
  name=$(dirname "$(dirname "$f")" | sed "s|^$CRITERION/||")
  printf '{"bench":"%s","mean_us":%s}\n' "$name" "$(jq '.mean.point_estimate / 1000' "$f")"
done >"$OUT/claims.jsonl"
fi

# ---------------------------------------------------------------------------------------------
# Herald's configuration for the runs: scripts/bench-config.sh, with the development upstream.
. scripts/bench-config.sh

# Writes $RUN/herald-$1.toml, with client_credentials allowed when this build knows the key.
write_config() { # write_config NAME DATABASE_URL
  local f="$RUN/herald-$1.toml"
  # Machine clients signing with ES256 and EdDSA, for /token per algorithm.
  local per_alg=""
  for alg in ES256 EdDSA; do
    per_alg+=$'\n[[clients]]\nclient_id = "bench-'"$alg"$'"\nclient_secret = "bench-secret"\n'
    per_alg+=$'scopes = ["profile"]\nredirect_uris = []\ngrant_types = ["client_credentials"]\n'
    per_alg+='id_token_signed_response_alg = "'"$alg"$'"\n'
  done
  bench_config "$BASE" "$2" "$DEV_UPSTREAM" \
    'grant_types = ["authorization_code", "client_credentials"]' "$per_alg" >"$f"
  "$HERALD" check-config --config "$f" >/dev/null || die "the benchmark configuration $f is refused"
  echo "$f"
}

start_herald() { # start_herald CONFIG LOGFILE
  # taskset directly (not the on_server function), so $! is Herald's own pid.
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$HERALD" serve --config "$1" >"$2" 2>&1 &
  SERVER_PID=$!
  wait_http "$BASE/healthz"
}

mint() { # mint DATABASE_URL N FILE
  on_load timeout 300 "$DRIVER" mint-codes --database-url "$1" --base "$BASE" --n "$2" --out "$3"
}

# Codes for one exchange run: more than a 10 s run can spend at the signing ceiling.
CODES=$((DURATION * 1500))

exchange() { # exchange CODES_FILE -> JSON, with CPU time per request
  local before after json
  before=$(cpu_ms "$SERVER_PID")
  json=$(on_load timeout $((DURATION + 60)) "$DRIVER" exchange --base "$BASE" --codes "$1" \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup 20 \
    --probe /.well-known/openid-configuration)
  after=$(cpu_ms "$SERVER_PID")
  [ -n "$json" ] || die "the exchange run measured nothing"
  jq -e '.token.ok > 0 and .token.errors == 0' <<<"$json" >/dev/null ||
    die "the exchange run had errors or no success: $json"
  jq -c --argjson cpu "$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" \
    --argjson rss "$(rss_kb "$SERVER_PID")" \
    '. + {server_cpu_ms: $cpu, cpu_ms_per_request: ($cpu / (.token.ok + .token.errors)), rss_after_kb: $rss}' \
    <<<"$json"
}

# One backend: empty-store /token, logins (SQLite only), RSS, then the same /token run again on a
# store holding $ROWS rows per table.
backend() { # backend NAME DATABASE_URL WITH_LOGINS
  local name=$1 url=$2 with_logins=$3 cfg json
  cfg=$(write_config "$name" "$url")
  mint "$url" "$CODES" "$RUN/codes-$name-empty.txt" >/dev/null
  log "$name: Herald started (CPU $SERVER_CPU)"
  start_herald "$cfg" "$RUN/herald-$name.log"
  sleep 2
  echo "{\"idle_rss_kb\":$(rss_kb "$SERVER_PID")}" >"$OUT/$name-idle.json"

  log "$name: discovery alone (wrk)"
  wrk_json get.lua "$BASE/.well-known/openid-configuration" >"$OUT/$name-discovery.json"
  log "$name: JWKS alone (wrk)"
  wrk_json get.lua "$BASE/jwks" >"$OUT/$name-jwks.json"

  log "$name: client_credentials"
  # One request first: the client secret's argon2 check is paid once, not by the measured run.
  curl -fsS -o /dev/null -u bench:bench-secret -d grant_type=client_credentials "$BASE/token" ||
    die "client_credentials at $BASE/token failed"
  BENCH_BODY="grant_type=client_credentials" BENCH_BASIC="$BASIC" \
    wrk_json token.lua "$BASE/token" >"$OUT/$name-client-credentials.json"
  for alg in ES256 EdDSA; do
    curl -fsS -o /dev/null -u "bench-$alg:bench-secret" -d grant_type=client_credentials "$BASE/token" ||
      die "client_credentials for bench-$alg failed"
    BENCH_BODY="grant_type=client_credentials" BENCH_BASIC="$(printf 'bench-%s:bench-secret' "$alg" | base64)" \
      wrk_json token.lua "$BASE/token" >"$OUT/$name-client-credentials-$alg.json"
  done

  log "$name: authorization_code exchange, empty store"
  exchange "$RUN/codes-$name-empty.txt" >"$OUT/$name-exchange-empty.json"
  cat "$OUT/$name-exchange-empty.json" >&2

  if [ "$with_logins" = 1 ]; then
    log "$name: $LOGINS full brokered logins"
    local before after
    before=$(cpu_ms "$SERVER_PID")
    json=$(on_load timeout $((LOGIN_SECONDS + 360)) "$DRIVER" logins --base "$BASE" --concurrency "$CONCURRENCY" \
      --duration "$LOGIN_SECONDS" --max "$LOGINS" --warmup 5 --probe /.well-known/openid-configuration)
    after=$(cpu_ms "$SERVER_PID")
    [ -n "$json" ] || die "the login run measured nothing"
    local done_logins
    done_logins=$(jq '.logins.ok' <<<"$json")
    [ "$done_logins" -ge "$LOGINS" ] ||
      die "only $done_logins of $LOGINS logins within ${LOGIN_SECONDS}s: lower BENCH_LOGINS or raise BENCH_LOGIN_SECONDS"
    jq -e '.logins.errors == 0' <<<"$json" >/dev/null || die "the login run had errors: $json"
    jq -c --argjson cpu "$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" \
      --argjson rss "$(rss_kb "$SERVER_PID")" \
      '. + {server_cpu_ms: $cpu, cpu_ms_per_login: ($cpu / .logins.ok), rss_after_kb: $rss}' \
      <<<"$json" >"$OUT/$name-logins.json"
    cat "$OUT/$name-logins.json" >&2
  fi
  stop_server

  log "$name: seeding $ROWS rows per table"
  on_load timeout 600 "$DRIVER" seed --database-url "$url" --rows "$ROWS" >"$OUT/$name-seed.json"
  cat "$OUT/$name-seed.json" >&2
  mint "$url" "$CODES" "$RUN/codes-$name-full.txt" >/dev/null
  start_herald "$cfg" "$RUN/herald-$name-full.log"
  sleep 2
  log "$name: authorization_code exchange, $ROWS rows per table"
  exchange "$RUN/codes-$name-full.txt" >"$OUT/$name-exchange-full.json"
  cat "$OUT/$name-exchange-full.json" >&2
  stop_server
}

backend sqlite "sqlite://$PWD/$RUN/sqlite/herald.db" 1

if [ "${BENCH_SKIP_PG:-0}" != 1 ]; then
  pg_isready -q -d "$PG_URL/postgres" ||
    die "PostgreSQL at $PG_URL is not answering (BENCH_SKIP_PG=1 leaves it out, on the record)"
  psql -q "$PG_URL/postgres" -c 'DROP DATABASE IF EXISTS herald_bench' -c 'CREATE DATABASE herald_bench'
  backend postgres "$PG_URL/herald_bench" 0
fi

# ---------------------------------------------------------------------------------------------
for alg in RS256 ES256; do
  log "3. oidc-provider client_credentials, $alg"
  NODE_ENV=production BENCH_ALG=$alg PORT=$OP_PORT taskset -c "$SERVER_CPU" node benches/oidc-provider/server.mjs \
    >"$RUN/oidc-provider-$alg.log" 2>&1 &
  SERVER_PID=$!
  wait_http "http://127.0.0.1:$OP_PORT/.well-known/openid-configuration"
  # Warm-up (JIT, first client authentication), not measured.
  BENCH_BODY="grant_type=client_credentials&scope=api%3Aread" BENCH_BASIC="$BASIC" on_load \
    timeout 30 wrk -t1 -c4 -d2s -s benches/wrk/token.lua "http://127.0.0.1:$OP_PORT/token" \
    >/dev/null 2>&1 || true
  echo "{\"idle_rss_kb\":$(rss_kb "$SERVER_PID")}" >"$OUT/oidc-provider-$alg-idle.json"
  before=$(cpu_ms "$SERVER_PID")
  BENCH_BODY="grant_type=client_credentials&scope=api%3Aread" BENCH_BASIC="$BASIC" \
    wrk_json token.lua "http://127.0.0.1:$OP_PORT/token" >"$RUN/op.json"
  after=$(cpu_ms "$SERVER_PID")
  jq -c --argjson cpu "$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" \
    '. + {server_cpu_ms: $cpu}' "$RUN/op.json" >"$OUT/oidc-provider-$alg-client-credentials.json"
  cat "$OUT/oidc-provider-$alg-client-credentials.json" >&2
  stop_server
done

log "3b. oidc-provider whole authorization-code flows (its development login and consent pages), RS256"
NODE_ENV=production BENCH_ALG=RS256 BENCH_FLOWS=1 PORT=$OP_PORT taskset -c "$SERVER_CPU" node benches/oidc-provider/server.mjs \
  >"$RUN/oidc-provider-flows.log" 2>&1 &
SERVER_PID=$!
wait_http "http://127.0.0.1:$OP_PORT/.well-known/openid-configuration"
before=$(cpu_ms "$SERVER_PID")
json=$(on_load timeout $((DURATION + 60)) "$DRIVER" logins --base "http://127.0.0.1:$OP_PORT" \
  --authorize-path /auth --client-id bench-web --scope openid --concurrency "$CONCURRENCY" \
  --duration "$DURATION" --warmup 5)
after=$(cpu_ms "$SERVER_PID")
jq -c --argjson cpu "$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" \
  '. + {server_cpu_ms: $cpu, cpu_ms_per_login: ($cpu / .logins.ok)}' <<<"$json" \
  >"$OUT/oidc-provider-RS256-flows.json"
cat "$OUT/oidc-provider-RS256-flows.json" >&2
stop_server

log "6. the login path, upstream out of process and in it (scripts/bench-login-path.sh)"
OUT=$OUT SERVER_CPU=$SERVER_CPU LOAD_CPU=$LOAD_CPU LOGIN_SECONDS=${BENCH_PATH_SECONDS:-15} PG_URL=$PG_URL \
  scripts/bench-login-path.sh "$HERALD" >&2
log "6b. idle RSS with ten argon2-hashed client secrets (scripts/bench-rss.sh)"
line=$(scripts/bench-rss.sh)
echo "$line" >&2
python3 -c 'import json, sys; print(json.dumps({k: (int(v) if v.isdigit() else v) for k, v in (f.split("=", 1) for f in sys.argv[1].split())}))' \
  "$line" >"$OUT/rss.json"
}

for k in $(seq 1 "$RUNS"); do
  OUT="$BENCH_OUT/run-$k"
  mkdir -p "$OUT"
  log "run $k of $RUNS"
  measure
done
echo "loadavg at end: $(cat /proc/loadavg)" >>"$BENCH_OUT/machine.txt"
python3 scripts/bench_summary.py "$BENCH_OUT" >"$BENCH_OUT/summary.md"
cat "$BENCH_OUT/summary.md"
