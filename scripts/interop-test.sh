#!/usr/bin/env bash
# The interop suite: Herald between certified OpenID peers. panva's oidc-provider stands in for
# Auth0 upstream; panva's openid-client, the Rust openidconnect crate and headless Chromium log in
# through Herald as client apps. Versions are pinned by tests/interop/package-lock.json and
# Cargo.lock. Everything listens on 127.0.0.1 only; screenshots land in artifacts/interop/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "interop-test.sh: installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)

# Build first, so the bounded run below spends its time on logins, not on compiling.
cargo build --locked --quiet
cargo test --locked --quiet --test interop_rust --no-run

timeout 180 node tests/interop/run.mjs "${CARGO_TARGET_DIR:-target}/debug/herald" artifacts/interop
