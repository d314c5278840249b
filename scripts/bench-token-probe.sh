#!/usr/bin/env bash
# /token authorization_code at saturation, with discovery probed 100 times a second beside it, for
# one or more Herald binaries run in turn (an A/B): `scripts/bench-token-probe.sh OLD NEW [ROUNDS]`
# runs OLD, NEW, OLD, NEW, ... ROUNDS times (default 3). Each run: a fresh SQLite store, codes
# minted by the driver, 16 exchanges in flight for 10 s on SERVER_CPU (1) against the driver on
# LOAD_CPU (0). Prints one line per run: the token rate and latency, and the probe's latency.
# A benchmark, not a test; bench.sh measures the same in its step 2 for the current build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 HERALD_BINARY... [ROUNDS as a last numeric argument]" >&2; exit 2; }
ROUNDS=3
if [ $# -ge 2 ] && [[ ${!#} =~ ^[0-9]+$ ]]; then ROUNDS=${!#}; set -- "${@:1:$#-1}"; fi
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
PORT=18087
BASE="http://127.0.0.1:$PORT"
cargo build --locked --release --quiet --example bench-driver
DRIVER=${CARGO_TARGET_DIR:-target}/release/examples/bench-driver
. scripts/bench-config.sh
PID=
WORK=
trap '[ -z "$PID" ] || kill "$PID" 2>/dev/null || true; [ -z "$WORK" ] || rm -rf "$WORK"' EXIT

one_run() { # one_run BINARY
  WORK=$(mktemp -d)
  bench_config "$BASE" "sqlite://$WORK/herald.db" "$DEV_UPSTREAM" \
    'grant_types = ["authorization_code"]' >"$WORK/herald.toml"
  "$DRIVER" mint-codes --database-url "sqlite://$WORK/herald.db" --base "$BASE" --n 15000 \
    --out "$WORK/codes.txt" >/dev/null
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$1" serve --config "$WORK/herald.toml" >"$WORK/log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && break; sleep 0.1; done
  taskset -c "$LOAD_CPU" "$DRIVER" exchange --base "$BASE" --codes "$WORK/codes.txt" --concurrency 16 \
    --duration 10 --warmup 20 --probe /.well-known/openid-configuration | python3 -c '
import json, sys
d = json.load(sys.stdin)
t, p = d["token"], d["probe"]
if t["ok"] == 0 or t["errors"]:
    sys.exit("bench-token-probe.sh: %s ok, %s errors" % (t["ok"], t["errors"]))
print("%s: /token %s/s, p50 %s ms, p99 %s ms; discovery probe p50 %s ms, p99 %s ms, max %s ms" % (
    sys.argv[1], t["per_s"], t["p50_ms"], t["p99_ms"], p["p50_ms"], p["p99_ms"], p["max_ms"]))
' "$1"
  kill "$PID" && wait "$PID" 2>/dev/null || true
  PID=
  rm -rf "$WORK"
  WORK=
}

for _ in $(seq 1 "$ROUNDS"); do
  for binary in "$@"; do one_run "$binary"; done
done
