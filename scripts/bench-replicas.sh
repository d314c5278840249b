#!/usr/bin/env bash
# Token-endpoint throughput of two Herald replicas on one PostgreSQL, next to one Herald on
# SQLite (issue 6), with the same release binary, client and wrk script as scripts/bench.sh.
#
# Both setups get the whole machine (2 cores): the replicas are pinned one per core, the single
# SQLite Herald is not pinned, and wrk (one instance per server) shares the cores with them, so
# the figures compare deployments on one box, not per-core rates (scripts/bench.sh has those).
# Runs after scripts/bench.sh has built target/release/herald; bounded: 2 × 10 s of load.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
HERALD=target/release/herald
OUT=artifacts/bench
RUN=$OUT/run
mkdir -p "$RUN"
export BENCH_LUA_DIR=$PWD/benches/wrk
BASIC=$(printf 'bench:bench-secret' | base64)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

config() { # config ISSUER_PORT LISTEN_PORT DATABASE_URL
  cat <<EOF
issuer = "http://127.0.0.1:$1"
listen = "127.0.0.1:$2"
database_url = "$3"
limits = { per_ip_per_second = 0 }   # one load generator on one address
[[upstreams]]
id = "dev"
kind = "dev"
[[clients]]
client_id = "bench"
client_secret = "bench-secret"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "profile"]
grant_types = ["authorization_code", "client_credentials"]
EOF
}

start() { # start CONFIG LOG [taskset CPU]
  if [ -n "${3:-}" ]; then
    HERALD_KEY_ENCRYPTION_KEY=$KEK RUST_LOG=warn taskset -c "$3" "$HERALD" serve --config "$1" >"$2" 2>&1 &
  else
    HERALD_KEY_ENCRYPTION_KEY=$KEK RUST_LOG=warn "$HERALD" serve --config "$1" >"$2" 2>&1 &
  fi
  PIDS+=($!)
}

wait_up() {
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1/healthz" && return 0; sleep 0.1; done
  echo "bench-replicas.sh: $1 did not come up" >&2
  exit 1
}

load() { # load URL -> one JSON line
  curl -fsS -o /dev/null -u bench:bench-secret -d grant_type=client_credentials "$1/token"
  BENCH_BODY="grant_type=client_credentials" BENCH_BASIC="$BASIC" \
    timeout $((DURATION + 30)) wrk -t1 -c"$CONCURRENCY" -d"${DURATION}s" --timeout 5s \
    -s benches/wrk/token.lua "$1/token" | sed -n 's/^JSON //p'
}

KEK=$("$HERALD" keys gen-kek)

# One Herald on SQLite.
p=$(free_port)
config "$p" "$p" "sqlite://$RUN/replicas-sqlite.db" >"$RUN/replicas-sqlite.toml"
rm -f "$RUN"/replicas-sqlite.db*
start "$RUN/replicas-sqlite.toml" "$RUN/replicas-sqlite.log"
wait_up "http://127.0.0.1:$p"
load "http://127.0.0.1:$p" >"$OUT/replicas-sqlite-one.json"
kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true; PIDS=()

# Two replicas on one PostgreSQL database, one per core, same issuer.
psql -q "$PG_URL/postgres" -c 'DROP DATABASE IF EXISTS herald_replicas' -c 'CREATE DATABASE herald_replicas'
a=$(free_port); b=$(free_port)
config "$a" "$a" "$PG_URL/herald_replicas" >"$RUN/replicas-a.toml"
config "$a" "$b" "$PG_URL/herald_replicas" >"$RUN/replicas-b.toml"
start "$RUN/replicas-a.toml" "$RUN/replicas-a.log" 0
wait_up "http://127.0.0.1:$a"
start "$RUN/replicas-b.toml" "$RUN/replicas-b.log" 1
wait_up "http://127.0.0.1:$b"
load "http://127.0.0.1:$a" >"$OUT/replicas-pg-a.json" &
wa=$!
load "http://127.0.0.1:$b" >"$OUT/replicas-pg-b.json"
wait "$wa"

python3 - "$OUT" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
one = json.loads((out / "replicas-sqlite-one.json").read_text())
a = json.loads((out / "replicas-pg-a.json").read_text())
b = json.loads((out / "replicas-pg-b.json").read_text())
two = a["ok_per_s"] + b["ok_per_s"]
print(f"| one Herald, SQLite, client_credentials RS256 | {one['ok_per_s']:,.0f} req/s, p99 {one['p99_ms']} ms |")
print(f"| two replicas, one PostgreSQL, client_credentials RS256 | {two:,.0f} req/s ({a['ok_per_s']:,.0f} + {b['ok_per_s']:,.0f}), p99 {max(a['p99_ms'], b['p99_ms'])} ms |")
print(f"| ratio two replicas ÷ one | {two / one['ok_per_s']:.2f}× |")
EOF
