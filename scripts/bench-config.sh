# Sourced by the benchmark scripts: Herald's configuration for a benchmark run, written once.
#
#   bench_config ISSUER DATABASE_URL UPSTREAM_BLOCK GRANT_TYPES_LINE [MORE]
#
# ISSUER is http://127.0.0.1:PORT, where Herald also listens; UPSTREAM_BLOCK is one
# `[[upstreams]]` table ($DEV_UPSTREAM, or another provider), whose namespaced groups claim
# becomes `groups`; the confidential client `bench` (secret `bench-secret`) asks for
# openid, profile, email and groups, with GRANT_TYPES_LINE (empty: the default grants); MORE is
# appended (other clients). The per-address rate limit is off: one load generator on one
# address would hit it.

# The built-in development upstream, with userinfo.
DEV_UPSTREAM=$'[[upstreams]]\nid = "dev"\nkind = "dev"\nuserinfo = true'

bench_config() {
  cat <<CONFIG
issuer = "$1"
listen = "${1#http://}"
database_url = "$2"
limits = { per_ip_per_second = 0 }

$3

[[upstreams.attributes]]
claim = "https://example\\\\.com/groups"
source = "id_token"
type = "string_array"

[[upstreams.mappings]]
from = "https://example\\\\.com/groups"
to = "groups"

[[clients]]
client_id = "bench"
client_name = "Benchmark client"
client_secret = "bench-secret"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "profile", "email", "groups"]
$4
${5:-}

[scopes.groups]
description = "Your groups"
claims = ["groups"]
CONFIG
}
