#!/usr/bin/env bash
# The soak of the hardening issue: SOAK_MINUTES (30) of users logging in through the development
# upstream, then refreshing, reading userinfo, revoking and logging out (benches/driver soak),
# against a release build on SQLite. Every answer is checked. Prints and writes
# artifacts/soak/summary.json: 5xx answers, grants or tokens refused that should have worked,
# RSS after the warm-up (SOAK_WARMUP_SECONDS, 600) and at the end, and Herald's CPU time. The
# warm-up is long because memory that fills up to a bound is not a leak: the development
# upstream keeps the tokens it issues for 300 s, and SQLite's page caches (8 connections) fill. Fails on any 5xx or lost token, or when RSS at the end is more than 10 % above RSS
# after the warm-up. Not part of scripts/test.sh (docs/security.md has its figures).
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${SOAK_MINUTES:-30}
WARMUP=${SOAK_WARMUP_SECONDS:-600}
CONCURRENCY=${SOAK_CONCURRENCY:-8}
PORT=18180
BASE="http://127.0.0.1:$PORT"
OUT=artifacts/soak
HERALD=target/release/herald
DRIVER=target/release/examples/bench-driver

mkdir -p "$OUT"
rm -f "$OUT"/*
cargo build --release --locked --bin herald --example bench-driver

cat >"$OUT/herald.toml" <<TOML
issuer = "$BASE"
listen = "127.0.0.1:$PORT"
database_url = "sqlite://$PWD/$OUT/soak.db"
limits = { per_ip_per_second = 0 }

[[upstreams]]
id = "dev"
kind = "dev"
userinfo = true

[[clients]]
client_id = "soak"
client_name = "Soak client"
client_secret = "soak-secret-0123456789"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "profile", "email", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
TOML
"$HERALD" check-config --config "$OUT/herald.toml" >/dev/null

RUST_LOG=warn "$HERALD" serve --config "$OUT/herald.toml" >"$OUT/herald.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && break
  sleep 0.2
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$PID/stat"; }

"$DRIVER" soak --base "$BASE" --client-id soak --client-secret soak-secret-0123456789 \
  --redirect-uri http://127.0.0.1:9/cb --concurrency "$CONCURRENCY" \
  --duration $((MINUTES * 60)) >"$OUT/driver.json" &
DRIVER_PID=$!

started=$(date +%s)
rss_warm=
printf 'seconds\trss_kb\n' >"$OUT/rss.tsv"
while kill -0 "$DRIVER_PID" 2>/dev/null; do
  sleep 10
  kill -0 "$DRIVER_PID" 2>/dev/null || break
  now=$(( $(date +%s) - started ))
  kill -0 "$PID" 2>/dev/null || { echo "soak.sh: Herald died; see $OUT/herald.log" >&2; exit 1; }
  printf '%s\t%s\n' "$now" "$(rss_kb)" >>"$OUT/rss.tsv"
  if [ -z "$rss_warm" ] && [ "$now" -ge "$WARMUP" ]; then
    rss_warm=$(rss_kb)
    cpu_warm=$(cpu_ms)
  fi
done
wait "$DRIVER_PID"
# RSS at the end is the last sample taken under load.
rss_end=$(awk 'END {print $2}' "$OUT/rss.tsv")
cpu_end=$(cpu_ms)
rss_max=$(awk 'NR > 1 && $2 > m {m = $2} END {print m}' "$OUT/rss.tsv")

python3 - "$OUT" "$rss_warm" "$rss_end" "$rss_max" "$cpu_warm" "$cpu_end" <<'PY'
import json, sys
out, rss_warm, rss_end, rss_max, cpu_warm, cpu_end = sys.argv[1:]
soak = json.load(open(f"{out}/driver.json"))["soak"]
ops = sum(soak[k]["ok"] for k in ("logins", "refreshes", "userinfo", "revocations", "logouts"))
summary = {
    "minutes": round(soak["seconds"] / 60, 1),
    "server_errors": soak["server_errors"],
    "lost_grants_or_tokens": soak["lost_grants_or_tokens"],
    "other_faults": soak["other_faults"],
    "operations": ops,
    "rss_after_warmup_mb": round(int(rss_warm) / 1024, 1),
    "rss_at_end_mb": round(int(rss_end) / 1024, 1),
    "rss_max_mb": round(int(rss_max) / 1024, 1),
    "rss_growth_percent": round((int(rss_end) / int(rss_warm) - 1) * 100, 1),
    "p99_ms": {k: soak[k]["p99_ms"] for k in ("logins", "refreshes", "userinfo", "revocations", "logouts")},
    "counts": {k: soak[k]["ok"] for k in ("logins", "refreshes", "userinfo", "revocations", "logouts")},
}
summary["herald_cpu_ms_total"] = round(float(cpu_end), 0)
summary["herald_cpu_ms_per_operation"] = round(float(cpu_end) / max(ops, 1), 3)
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
ok = (summary["server_errors"] == 0 and summary["lost_grants_or_tokens"] == 0
      and summary["other_faults"] == 0 and summary["rss_growth_percent"] <= 10)
sys.exit(0 if ok else 1)
PY
