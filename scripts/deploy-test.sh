#!/usr/bin/env bash
# Checks the deployment files in deploy/ as far as this machine can without a container engine
# or network access:
#   1. deploy/herald.service: `systemd-analyze verify` (a copy whose ExecStart points at the built
#      binary, so verify sees a real executable) must pass without a word about the unit, the
#      required hardening is there, and `systemd-analyze security --offline` rates it 2.0 or less;
#   2. deploy/docker-compose.yml and every document of deploy/kubernetes/herald.yaml parse, with
#      the structure they promise (replicas, probes, security contexts, secrets, proxy routes),
#      and name only environment variables Herald reads;
#   3. deploy/Dockerfile: multi-stage, a --locked release build, a non-root USER, HEALTHCHECK,
#      EXPOSE, VOLUME, and the same `serve --config` command as the unit and the manifests;
#   4. the built binary runs as `nobody` the way the image runs it: read-only config, writable
#      state directory as working directory, SQLite there, the development upstream as in
#      config/herald.toml on a free loopback port; /healthz and /readyz answer
#      200 (curl and the image's health-check script), nothing is written next to the config, and
#      SIGTERM ends it with exit status 0 within a few seconds;
#   5. `herald check-config` accepts every config file in deploy/.
#
# Needs root (to run Herald as nobody), python3 with PyYAML, systemd-analyze, curl, runuser.
# The binary: $HERALD_BIN, else ${CARGO_TARGET_DIR:-target}/debug/herald (build it first).
# DEPLOY_DIR (default deploy/) lets a copy of the files be checked instead.
set -euo pipefail
# Whatever fails without a message of ours still says where.
trap 'echo "deploy-test: FAIL: unexpected error (status $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

cd "$(dirname "$0")/.."
ROOT=$PWD
DEPLOY=$(cd "${DEPLOY_DIR:-$ROOT/deploy}" && pwd)

passed=0
fail() {
    echo "deploy-test: FAIL: $*" >&2
    exit 1
}
pass() {
    passed=$((passed + 1))
    echo "  ok: $*"
}
step() { echo "== $*"; }

# ---- prerequisites ----
[ "$(id -u)" = 0 ] || fail "run as root: step 4 starts Herald as the user nobody with runuser"
for tool in python3 systemd-analyze curl runuser sha256sum; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done
python3 -c 'import yaml, tomllib' 2>/dev/null ||
    fail "python3 needs PyYAML (pip install pyyaml / apt-get install python3-yaml) and Python >= 3.11"
id nobody >/dev/null 2>&1 || fail "there is no user nobody"

BIN=${HERALD_BIN:-${CARGO_TARGET_DIR:-target}/debug/herald}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
[ -f "$BIN" ] || fail "no Herald binary at $BIN: build it first (cargo build) or set HERALD_BIN"
[ -x "$BIN" ] || fail "$BIN is not executable"

for f in Dockerfile docker-compose.yml herald.service kubernetes/herald.yaml README.md healthcheck.sh; do
    [ -f "$DEPLOY/$f" ] || fail "$DEPLOY/$f is missing"
done

WORK=$(mktemp -d)
chmod 755 "$WORK" # /tmp may be mounted so that nobody cannot traverse a private directory
HERALD_PID=""
RUNUSER_PID=""
kill_tree() { # pid: the process and everything it started, children first
    local child
    for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
    kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
    if [ -n "$RUNUSER_PID" ] && kill -0 "$RUNUSER_PID" 2>/dev/null; then
        kill_tree "$RUNUSER_PID"
        wait "$RUNUSER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The binary, where nobody can read and run it.
install -d -m 0755 "$WORK/bin"
install -m 0755 "$BIN" "$WORK/bin/herald"
HERALD="$WORK/bin/herald"
"$HERALD" --help >/dev/null || fail "$BIN --help failed"
"$HERALD" serve --help >"$WORK/serve-help" || fail "$BIN serve --help failed"
grep -q -- '--config' "$WORK/serve-help" || fail "herald serve has no --config flag: $(cat "$WORK/serve-help")"

# The command line every deployment file must use: the unit's, the image's, compose's, k8s'.
EXPECTED_ARGS="serve --config /etc/herald/herald.toml"

# ---------------------------------------------------------------------------------------------
step "1. systemd unit: deploy/herald.service"
UNIT="$DEPLOY/herald.service"
exec_lines=$(grep -c '^ExecStart=' "$UNIT" || true)
[ "$exec_lines" = 1 ] || fail "herald.service: expected exactly one ExecStart=, found $exec_lines"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
exec_bin=${exec_start%% *}
exec_args=${exec_start#"$exec_bin" }
[ "$exec_bin" = /usr/local/bin/herald ] ||
    fail "herald.service: ExecStart runs $exec_bin, expected /usr/local/bin/herald"
[ "$exec_args" = "$EXPECTED_ARGS" ] ||
    fail "herald.service: ExecStart arguments are '$exec_args', expected '$EXPECTED_ARGS'"
pass "ExecStart=/usr/local/bin/herald $EXPECTED_ARGS"

install -d -m 0755 "$WORK/systemd"
sed "s|^ExecStart=$exec_bin |ExecStart=$HERALD |" "$UNIT" >"$WORK/systemd/herald.service"
grep -q "^ExecStart=$HERALD serve" "$WORK/systemd/herald.service" ||
    fail "could not point the unit's ExecStart at the built binary"
verify_rc=0
verify_out=$(cd "$WORK/systemd" && systemd-analyze verify ./herald.service 2>&1) || verify_rc=$?
unit_lines=$(printf '%s\n' "$verify_out" | grep -F 'herald.service' || true)
other_lines=$(printf '%s\n' "$verify_out" | grep -vF 'herald.service' | grep -v '^$' || true)
[ -n "$other_lines" ] && printf '  (systemd-analyze, not about the unit: %s)\n' "$other_lines"
if [ "$verify_rc" != 0 ] || [ -n "$unit_lines" ]; then
    printf '%s\n' "$verify_out" >&2
    fail "systemd-analyze verify herald.service: exit $verify_rc; see its output above"
fi
pass "systemd-analyze verify: no error, no warning"

python3 - "$UNIT" <<'PY' || fail "herald.service lacks required settings (see above)"
import sys
settings = {}
section = None
for raw in open(sys.argv[1]):
    line = raw.strip()
    if not line or line[0] in "#;":
        continue
    if line.startswith("["):
        section = line.strip("[]")
        continue
    key, _, value = line.partition("=")
    settings.setdefault((section, key.strip()), []).append(value.strip())

def last(key, section="Service"):
    values = settings.get((section, key))
    return values[-1] if values else None

problems = []
want = {
    "DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "herald",
    "NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
}
for key, value in want.items():
    got = last(key)
    if got != value:
        shown = f"{key}={value}" if value else f"{key}= (empty: no capabilities)"
        problems.append(f"expected {shown}, found {key}={got}" if got is not None else f"{shown} is missing")
families = last("RestrictAddressFamilies")
if not families:
    problems.append("RestrictAddressFamilies= is missing")
elif any(f in families.split() for f in ("AF_PACKET", "AF_NETLINK")) or families.startswith("~"):
    problems.append(f"RestrictAddressFamilies={families} allows more than IP and unix sockets")
if not last("EnvironmentFile"):
    problems.append("EnvironmentFile= (the secrets) is missing")
if not (last("ReadOnlyPaths") or last("ConfigurationDirectory")):
    problems.append("neither ReadOnlyPaths= nor ConfigurationDirectory= for the config")
if last("User") not in (None, ""):
    problems.append("User= is set; DynamicUser=yes picks the user")
if last("WantedBy", "Install") is None:
    problems.append("[Install] WantedBy= is missing")
for p in problems:
    print(f"  herald.service: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
pass "DynamicUser, ProtectSystem=strict, StateDirectory=herald, NoNewPrivileges, PrivateTmp, ProtectHome, empty CapabilityBoundingSet, RestrictAddressFamilies, EnvironmentFile"

security_rc=0
security_out=$(cd "$WORK/systemd" &&
    systemd-analyze security --offline=yes --threshold=20 --no-pager ./herald.service 2>&1) ||
    security_rc=$?
exposure=$(printf '%s\n' "$security_out" |
    grep -o 'Overall exposure level for herald.service: [0-9.]*' | awk '{print $NF}' || true)
if [ "$security_rc" != 0 ] || [ -z "$exposure" ]; then
    printf '%s\n' "$security_out" | grep -v '✓' >&2
    fail "systemd-analyze security rates herald.service above 2.0 (exposure ${exposure:-unknown})"
fi
pass "systemd-analyze security: exposure $exposure (at most 2.0)"

# ---------------------------------------------------------------------------------------------
step "2. docker-compose.yml and kubernetes/herald.yaml"
# The HERALD_* variables the code reads: std::env::var("...") and clap's `env = "..."`, and
# the (key, variable) pairs of a table of config overrides in src/config/, if there is one.
{
    grep -rhoE '(env::var\(|[(,] *env = )"HERALD_[A-Z0-9_]+"' "$ROOT/src" || true
    grep -rhoE '\("[a-z_]+", *"HERALD_[A-Z0-9_]+"\)' "$ROOT/src/config" || true
} | grep -oE 'HERALD_[A-Z0-9_]+' | sort -u >"$WORK/herald-env-names"
grep -qx HERALD_KEY_ENCRYPTION_KEY "$WORK/herald-env-names" ||
    fail "found no std::env::var(\"HERALD_KEY_ENCRYPTION_KEY\") in src/: has the variable moved?"
echo "  (Herald reads: $(tr '\n' ' ' <"$WORK/herald-env-names"))"

python3 - "$DEPLOY" "$WORK" "$EXPECTED_ARGS" <<'PY' || fail "deploy YAML structure (see above)"
import os, re, sys, tomllib, urllib.parse
import yaml

deploy, work, expected_args = sys.argv[1], sys.argv[2], sys.argv[3].split()
known_env = set(open(os.path.join(work, "herald-env-names")).read().split())
# Read by the PostgreSQL driver (sqlx) and by the log filter, not by Herald's own code.
other_env = {"PGPASSWORD", "RUST_LOG"}
problems = []

def problem(msg):
    problems.append(msg)

def ok(msg):
    print(f"  ok: {msg}")
    with open(os.path.join(work, "ok-count"), "a") as out:
        out.write("ok\n")

def check_env_names(where, names, config):
    """Every HERALD_ variable must be one Herald reads, or a secret the config names."""
    named = {u.get("client_secret_env") for u in config.get("upstreams", [])}
    named |= {c.get("client_secret_env") for c in config.get("clients", [])}
    for name in names:
        if name in known_env or name in named:
            continue
        if name.startswith("HERALD_") or name not in other_env:
            problem(f"{where}: environment variable {name} is read by nothing in Herald "
                    "(not in src/, not a client_secret_env of the config)")
    for secret in sorted(n for n in named if n):
        if secret not in names:
            problem(f"{where}: the config's client_secret_env {secret} is not in the environment")

def check_config(where, config, db_scheme="postgres"):
    if not config.get("database_url", "").startswith(db_scheme + "://"):
        problem(f"{where}: database_url must be a {db_scheme}:// URL for several replicas")
    if not str(config.get("session_store", "")).startswith("redis://"):
        problem(f"{where}: session_store must be a redis:// URL")
    if urllib.parse.urlsplit(config.get("database_url", "")).password:
        problem(f"{where}: database_url holds a password; give it as PGPASSWORD instead")

# ---- docker-compose.yml ----
compose_path = os.path.join(deploy, "docker-compose.yml")
def load_or_die(what, loader):
    try:
        return loader()
    except (yaml.YAMLError, tomllib.TOMLDecodeError, OSError) as e:
        print(f"  {what} does not parse: {e}", file=sys.stderr)
        sys.exit(1)

compose = load_or_die(compose_path, lambda: yaml.safe_load(open(compose_path)))
if not isinstance(compose, dict):
    print(f"  {compose_path} is not a YAML mapping", file=sys.stderr)
    sys.exit(1)
services = compose.get("services") or {}

def is_herald(svc):
    build = svc.get("build") or {}
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    return dockerfile.endswith("Dockerfile") or str(svc.get("image", "")).startswith("herald")

def image_of(svc):
    return str(svc.get("image", ""))

heralds = {n: s for n, s in services.items() if is_herald(s)}
postgres = [n for n, s in services.items() if image_of(s).startswith("postgres")]
redis = [n for n, s in services.items() if image_of(s).startswith("redis")]
proxies = {n: s for n, s in services.items()
           if re.match(r"(caddy|nginx|haproxy|traefik)", image_of(s))}
if len(heralds) != 2:
    problem(f"compose: expected two Herald services, found {sorted(heralds)}")
if len(postgres) != 1 or len(redis) != 1:
    problem(f"compose: expected one postgres and one redis service, found {postgres} and {redis}")
if len(proxies) != 1:
    problem(f"compose: expected one proxy service (caddy/nginx/...), found {sorted(proxies)}")

def depends(svc):
    d = svc.get("depends_on") or {}
    return d if isinstance(d, dict) else {n: {} for n in d}

listen_port = None
for name, svc in heralds.items():
    deps = depends(svc)
    for needed in postgres + redis:
        if needed not in deps:
            problem(f"compose: {name} does not depend on {needed}")
        elif (deps[needed] or {}).get("condition") != "service_healthy":
            problem(f"compose: {name} should wait for {needed} to be healthy")
    if svc.get("read_only") is not True:
        problem(f"compose: {name} must run with read_only: true")
    user = str(svc.get("user", "")).split(":")[0]
    if user in ("", "0", "root"):
        problem(f"compose: {name} must set a non-root user (found {user!r})")
    if [str(a) for a in svc.get("command") or []] != expected_args:
        problem(f"compose: {name} command is {svc.get('command')}, expected {expected_args}")
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    for required in ("HERALD_KEY_ENCRYPTION_KEY", "HERALD_ADMIN_TOKEN"):
        if required not in env:
            problem(f"compose: {name} lacks {required}")
    mounts = [str(v) for v in svc.get("volumes") or []]
    config_mount = [m for m in mounts if m.split(":")[1:2] == ["/etc/herald/herald.toml"]]
    if not config_mount or not config_mount[0].endswith(":ro"):
        problem(f"compose: {name} must mount its config read-only at /etc/herald/herald.toml")
        continue
    source = os.path.normpath(os.path.join(deploy, config_mount[0].split(":")[0]))
    if not os.path.isfile(source):
        problem(f"compose: {name} mounts {source}, which does not exist")
        continue
    config = load_or_die(source, lambda: tomllib.load(open(source, "rb")))
    check_config(f"compose {name} ({os.path.basename(source)})", config)
    db_host = urllib.parse.urlsplit(config.get("database_url", "")).hostname
    redis_host = urllib.parse.urlsplit(config.get("session_store", "")).hostname
    if db_host not in postgres:
        problem(f"compose: database_url host {db_host!r} is not the postgres service {postgres}")
    if redis_host not in redis:
        problem(f"compose: session_store host {redis_host!r} is not the redis service {redis}")
    if "PGPASSWORD" not in env and not urllib.parse.urlsplit(config["database_url"]).password:
        problem(f"compose: {name} gives the database no password (PGPASSWORD)")
    check_env_names(f"compose {name}", set(env), config)
    listen_port = int(config["listen"].rsplit(":", 1)[1])
    issuer = urllib.parse.urlsplit(config["issuer"])
    with open(os.path.join(work, "compose.herald.toml"), "wb") as out:
        out.write(open(source, "rb").read())
if len(heralds) == 2 and not problems:
    ok(f"compose: Herald services {sorted(heralds)} read-only, non-root, depending on "
       f"{postgres + redis} (healthy), config mounted read-only, PostgreSQL + Redis in it")

for name, svc in proxies.items():
    deps = depends(svc)
    for h in heralds:
        if h not in deps:
            problem(f"compose: the proxy {name} does not depend on {h}")
    config_files = []
    for v in svc.get("volumes") or []:
        src = str(v).split(":")[0]
        path = os.path.normpath(os.path.join(deploy, src))
        if src.startswith((".", "/")) and os.path.isfile(path):
            config_files.append(path)
    if not config_files:
        problem(f"compose: the proxy {name} mounts no config file from deploy/")
        continue
    text = "\n".join(open(p).read() for p in config_files)
    text = "\n".join(l.split("#", 1)[0] for l in text.splitlines())
    targets = set(re.findall(r"([A-Za-z0-9_.-]+):(\d+)", text))
    for h in heralds:
        if (h, str(listen_port)) not in targets:
            problem(f"compose: the proxy config ({', '.join(map(os.path.basename, config_files))}) "
                    f"does not route to {h}:{listen_port}")
    published = [str(p) for p in svc.get("ports") or []]
    host_ports = {p.split(":")[-2] for p in published if ":" in p}
    if str(issuer.port or (443 if issuer.scheme == "https" else 80)) not in host_ports:
        problem(f"compose: the proxy publishes {published}, not the issuer's port ({issuer.geturl()})")
    if not problems:
        ok(f"compose: proxy {name} routes to {', '.join(f'{h}:{listen_port}' for h in sorted(heralds))} "
           f"and publishes the issuer's port {issuer.port}")

# ---- kubernetes/herald.yaml ----
k8s_path = os.path.join(deploy, "kubernetes", "herald.yaml")
docs = [d for d in load_or_die(k8s_path, lambda: list(yaml.safe_load_all(open(k8s_path)))) if d is not None]
by_kind = {}
for i, d in enumerate(docs):
    if not isinstance(d, dict) or not all(k in d for k in ("apiVersion", "kind", "metadata")):
        problem(f"k8s: document {i + 1} lacks apiVersion, kind or metadata")
        continue
    if not d["metadata"].get("name"):
        problem(f"k8s: document {i + 1} ({d['kind']}) has no metadata.name")
    by_kind.setdefault(d["kind"], []).append(d)
for kind in ("Deployment", "Service", "ConfigMap", "Secret"):
    if len(by_kind.get(kind, [])) != 1:
        problem(f"k8s: expected one {kind}, found {len(by_kind.get(kind, []))}")
if problems:
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    sys.exit(1)
ok(f"k8s: {len(docs)} documents parse: {', '.join(d['kind'] for d in docs)}")

dep, svc, cm, secret = (by_kind[k][0] for k in ("Deployment", "Service", "ConfigMap", "Secret"))
spec = dep["spec"]
pod = spec["template"]["spec"]
if spec.get("replicas") != 2:
    problem(f"k8s: Deployment replicas is {spec.get('replicas')}, expected 2")
containers = pod.get("containers") or []
herald_c = [c for c in containers if c.get("name") == "herald"] or containers[:1]
if not herald_c:
    problem("k8s: the Deployment has no container")
    herald_c = [{}]
c = herald_c[0]
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}

def probe(kind):
    http = (c.get(kind) or {}).get("httpGet") or {}
    port = http.get("port")
    if port not in ports and port not in ports.values():
        problem(f"k8s: {kind} port {port!r} is not a container port {ports}")
    return http.get("path")

if probe("readinessProbe") != "/readyz":
    problem("k8s: readinessProbe must GET /readyz")
if probe("livenessProbe") != "/healthz":
    problem("k8s: livenessProbe must GET /healthz")
sc = c.get("securityContext") or {}
psc = pod.get("securityContext") or {}
if sc.get("readOnlyRootFilesystem") is not True:
    problem("k8s: readOnlyRootFilesystem must be true")
if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
    problem("k8s: runAsNonRoot must be true")
if sc.get("runAsUser", psc.get("runAsUser")) == 0:
    problem("k8s: runAsUser must not be 0")
if sc.get("allowPrivilegeEscalation") is not False:
    problem("k8s: allowPrivilegeEscalation must be false")
if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
    problem("k8s: capabilities must drop ALL")
if [str(a) for a in (c.get("command") or []) + (c.get("args") or [])] != expected_args:
    problem(f"k8s: container args are {c.get('args')}, expected {expected_args}")

secret_keys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
for key in ("HERALD_KEY_ENCRYPTION_KEY", "HERALD_ADMIN_TOKEN"):
    if key not in secret_keys:
        problem(f"k8s: the Secret lacks {key}")
env_names = set()
from_secret = False
for ef in c.get("envFrom") or []:
    if (ef.get("secretRef") or {}).get("name") == secret["metadata"]["name"]:
        env_names |= secret_keys
        from_secret = True
for e in c.get("env") or []:
    env_names.add(e["name"])
    ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
    if ref.get("name") == secret["metadata"]["name"] and e["name"] == "HERALD_KEY_ENCRYPTION_KEY":
        from_secret = True
if not from_secret or "HERALD_KEY_ENCRYPTION_KEY" not in env_names:
    problem("k8s: the container does not take HERALD_KEY_ENCRYPTION_KEY from the Secret")

# The config: a ConfigMap volume mounted read-only where --config points.
config_path = expected_args[expected_args.index("--config") + 1]
mount_dir, file_name = os.path.split(config_path)
volumes = {v["name"]: v for v in pod.get("volumes") or []}
mounts = [m for m in c.get("volumeMounts") or [] if m.get("mountPath") == mount_dir]
if not mounts:
    problem(f"k8s: nothing is mounted at {mount_dir}")
else:
    vol = volumes.get(mounts[0]["name"], {})
    if (vol.get("configMap") or {}).get("name") != cm["metadata"]["name"]:
        problem(f"k8s: {mount_dir} is not the ConfigMap {cm['metadata']['name']}")
    if mounts[0].get("readOnly") is not True:
        problem(f"k8s: the config mount {mount_dir} must be readOnly")
if file_name not in (cm.get("data") or {}):
    problem(f"k8s: the ConfigMap has no {file_name}")
else:
    text = cm["data"][file_name]
    config = load_or_die(f"the ConfigMap's {file_name}", lambda: tomllib.loads(text))
    check_config("k8s ConfigMap", config)
    check_env_names("k8s Deployment", env_names, config)
    cport = int(config["listen"].rsplit(":", 1)[1])
    if cport not in ports.values():
        problem(f"k8s: the config listens on {cport}, the container exposes {ports}")
    with open(os.path.join(work, "k8s.herald.toml"), "w") as out:
        out.write(text)

labels = spec["template"]["metadata"].get("labels") or {}
selector = svc["spec"].get("selector") or {}
if not selector or any(labels.get(k) != v for k, v in selector.items()):
    problem(f"k8s: the Service selector {selector} does not match the pod labels {labels}")
if (spec.get("selector") or {}).get("matchLabels", {}).items() - labels.items():
    problem("k8s: the Deployment selector does not match its pod labels")
for p in svc["spec"].get("ports") or []:
    t = p.get("targetPort")
    if t not in ports and t not in ports.values():
        problem(f"k8s: the Service targetPort {t!r} is not a container port {ports}")

for p in problems:
    print(f"  {p}", file=sys.stderr)
if problems:
    sys.exit(1)
ok("k8s: 2 replicas, readinessProbe /readyz, livenessProbe /healthz, runAsNonRoot, "
   "readOnlyRootFilesystem, no privilege escalation, capabilities drop ALL")
ok("k8s: the Secret holds HERALD_KEY_ENCRYPTION_KEY and HERALD_ADMIN_TOKEN, the container "
   "takes them; the ConfigMap is mounted read-only at the --config path; the Service matches")
ok("compose and k8s name only environment variables Herald (or its PostgreSQL driver) reads")
PY
passed=$((passed + $(wc -l <"$WORK/ok-count")))

# ---------------------------------------------------------------------------------------------
step "3. Dockerfile"
python3 - "$DEPLOY" "$ROOT" "$WORK" "$EXPECTED_ARGS" <<'PY' || fail "deploy/Dockerfile (see above)"
import json, os, re, shlex, sys

deploy, root, work, expected_args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()

def ctx(src):
    """A path in the build context (the repository root); deploy/... is the checked copy."""
    src = src[2:] if src.startswith("./") else src
    return os.path.join(deploy, src[len("deploy/"):]) if src.startswith("deploy/") else os.path.join(root, src)
# Join continuation lines, drop comments and parser directives.
instructions = []
current = ""
for raw in open(os.path.join(deploy, "Dockerfile")):
    line = raw.rstrip("\n")
    if not current and line.lstrip().startswith("#"):
        continue
    if line.rstrip().endswith("\\"):
        current += line.rstrip()[:-1] + " "
        continue
    current += line
    if current.strip():
        word, _, rest = current.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
    current = ""

stages = []
for word, rest in instructions:
    if word == "FROM":
        stages.append([])
    if stages:
        stages[-1].append((word, rest))
problems = []
if len(stages) < 2:
    problems.append(f"expected a multi-stage build, found {len(stages)} FROM")
build = [r for s in stages[:-1] for w, r in s if w == "RUN" and "cargo build" in r]
if not build or not all(f in build[0] for f in ("--release", "--locked")):
    problems.append("no builder stage runs `cargo build --release --locked`")
final = dict()
for w, r in stages[-1] if stages else []:
    final.setdefault(w, []).append(r)

def exec_form(value):
    try:
        v = json.loads(value)
        return [str(x) for x in v] if isinstance(v, list) else None
    except ValueError:
        return shlex.split(value)

user = (final.get("USER") or [""])[-1].split(":")[0]
if user in ("", "0", "root"):
    problems.append(f"the final stage must set a non-root USER (found {user!r})")
health = (final.get("HEALTHCHECK") or [""])[-1]
if not health or health.upper() == "NONE":
    problems.append("the final stage has no HEALTHCHECK")
else:
    cmd = re.sub(r"^(--\S+\s+)*", "", health)
    if not cmd.upper().startswith("CMD"):
        problems.append(f"HEALTHCHECK has no CMD: {health}")
    probe = cmd[3:].strip()
    argv = exec_form(probe) or []
    # The probe must reach /healthz: in its command line or in a script the image copies.
    script_text = ""
    for w, r in stages[-1]:
        if w == "COPY" and argv and argv[0] in r.split()[-1:]:
            src = [a for a in r.split() if not a.startswith("--")][0]
            if os.path.isfile(ctx(src)):
                script_text = open(ctx(src)).read()
                with open(os.path.join(work, "healthcheck-path"), "w") as out:
                    out.write(ctx(src))
    if "/healthz" not in probe and "/healthz" not in script_text:
        problems.append(f"HEALTHCHECK does not ask /healthz: {health}")
exposed = " ".join(final.get("EXPOSE") or []).split()
if not any(p.split("/")[0] == "8080" for p in exposed):
    problems.append(f"EXPOSE 8080 is missing (found {exposed})")
volumes = " ".join(final.get("VOLUME") or [])
if "/var/lib/herald" not in volumes:
    problems.append("VOLUME /var/lib/herald (the SQLite state) is missing")
argv = (exec_form((final.get("ENTRYPOINT") or ["[]"])[-1]) or []) + \
       (exec_form((final.get("CMD") or ["[]"])[-1]) or [])
if argv[:1] != ["/usr/local/bin/herald"] or argv[1:] != expected_args:
    problems.append(f"the image runs {argv}, expected /usr/local/bin/herald {' '.join(expected_args)}")
# Every COPY from the build context must name files that exist.
config_src = None
for w, r in stages[-1]:
    if w != "COPY" or "--from=" in r:
        continue
    parts = [a for a in r.split() if not a.startswith("--")]
    for src in parts[:-1]:
        if not os.path.exists(ctx(src)):
            problems.append(f"COPY {src}: no such file in the build context")
    if parts[-1] == "/etc/herald/herald.toml":
        config_src = parts[0]
if not config_src:
    problems.append("the image copies no config to /etc/herald/herald.toml")
else:
    with open(os.path.join(work, "image-config-path"), "w") as out:
        out.write(ctx(config_src))
for p in problems:
    print(f"  Dockerfile: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"  ok: {len(stages)} stages, cargo build --release --locked, USER {user}, HEALTHCHECK on "
      f"/healthz, EXPOSE {' '.join(exposed)}, VOLUME {volumes}")
print(f"  ok: the image runs {' '.join(argv)} with {config_src}")
PY
passed=$((passed + 2))
IMAGE_CONFIG=$(cat "$WORK/image-config-path")
[ -f "$WORK/healthcheck-path" ] || fail "the HEALTHCHECK runs no script the image copies from deploy/"
# Where nobody can read it, as in the image (/usr/local/bin/herald-healthcheck).
install -m 0755 "$(cat "$WORK/healthcheck-path")" "$WORK/bin/herald-healthcheck"
HEALTHCHECK_SCRIPT=$WORK/bin/herald-healthcheck

# ---------------------------------------------------------------------------------------------
step "4. Herald as nobody, the way the image runs it (read-only config, writable state)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CONF_DIR=$WORK/etc-herald
STATE_DIR=$WORK/var-lib-herald
install -d -m 0755 "$CONF_DIR"
# The repository's default config (SQLite and the development upstream, which Herald allows only
# on a loopback listener), on a free loopback port, its SQLite file in our state directory.
DEV_CONFIG=$ROOT/config/herald.toml
sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$PORT|g" \
    -e "s|^database_url = .*|database_url = \"sqlite://$STATE_DIR/herald.db\"|" \
    "$DEV_CONFIG" >"$CONF_DIR/herald.toml"
grep -q "^issuer = \"http://127.0.0.1:$PORT\"" "$CONF_DIR/herald.toml" &&
    grep -q "^listen = \"127.0.0.1:$PORT\"" "$CONF_DIR/herald.toml" &&
    grep -q "^database_url = \"sqlite://$STATE_DIR/herald.db\"" "$CONF_DIR/herald.toml" &&
    grep -q 'kind = "dev"' "$CONF_DIR/herald.toml" ||
    fail "$DEV_CONFIG: expected issuer and listen on 127.0.0.1:8080, a database_url and the dev upstream"
chown -R root:root "$CONF_DIR"
chmod 0444 "$CONF_DIR/herald.toml"
chmod 0555 "$CONF_DIR"
install -d -o nobody -g nogroup -m 0700 "$STATE_DIR"
# -A, not -a: `..` is the temporary root, whose time changes when the state directory beside
# the config directory is written; only what is in the config directory counts.
conf_before=$(cd "$CONF_DIR" && ls -lA && sha256sum herald.toml)

KEK=$("$HERALD" keys gen-kek) || fail "herald keys gen-kek failed"
python3 -c 'import base64,sys; assert len(base64.b64decode(sys.argv[1], validate=True)) == 32' "$KEK" ||
    fail "herald keys gen-kek printed '$KEK', not 32 bytes of standard base64"
pass "herald keys gen-kek prints a 32-byte standard-base64 key"

LOG=$WORK/herald.log
# The image's command line, with --config pointing at our read-only copy.
read -r -a RUN_ARGS <<<"${EXPECTED_ARGS//\/etc\/herald\/herald.toml/$CONF_DIR/herald.toml}"
(
    cd "$STATE_DIR" # the image's WORKDIR
    exec runuser -u nobody -- env -i PATH=/usr/bin:/bin HERALD_CONFIG="$CONF_DIR/herald.toml" \
        HERALD_KEY_ENCRYPTION_KEY="$KEK" HERALD_ADMIN_TOKEN=deploy-test-admin-token \
        RUST_LOG=herald=info "$HERALD" "${RUN_ARGS[@]}"
) >"$LOG" 2>&1 &
RUNUSER_PID=$!
show_log() {
    echo "---- Herald's log ($LOG) ----" >&2
    cat "$LOG" >&2
    echo "----------------------" >&2
}
# Herald itself is runuser's child; SIGTERM goes to it (runuser would die of the signal itself).
for _ in $(seq 1 100); do
    HERALD_PID=$(pgrep -P "$RUNUSER_PID" -x herald || true)
    [ -n "$HERALD_PID" ] && break
    kill -0 "$RUNUSER_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$HERALD_PID" ] || {
    show_log
    fail "Herald did not start under runuser"
}
owner=$(ps -o user= -p "$HERALD_PID" | tr -d ' ' || true)
if [ -z "$owner" ]; then
    show_log
    fail "Herald exited at once (see its log above)"
fi
[ "$owner" = nobody ] || fail "Herald runs as '$owner', not nobody"
pass "Herald (pid $HERALD_PID) runs as nobody: ${RUN_ARGS[*]}"

wait_for() { # path: poll until it answers 200, for at most 30 s
    local code=""
    for _ in $(seq 1 150); do
        if ! kill -0 "$HERALD_PID" 2>/dev/null; then
            show_log
            fail "Herald exited before $1 answered"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT$1" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    show_log
    fail "$1 did not answer 200 within 30 s (last: ${code:-no answer})"
}
wait_for /healthz
pass "GET /healthz: 200"
wait_for /readyz
pass "GET /readyz: 200"
runuser -u nobody -- env -i PATH=/usr/bin:/bin HERALD_HEALTHCHECK_PORT="$PORT" "$HEALTHCHECK_SCRIPT" ||
    fail "the image's health check ($HEALTHCHECK_SCRIPT) failed against a healthy Herald"
pass "the image's HEALTHCHECK script says healthy (as nobody)"
disc=$(curl -sf --max-time 5 "http://127.0.0.1:$PORT/.well-known/openid-configuration") ||
    fail "the discovery document did not answer"
grep -q "\"issuer\":\"http://127.0.0.1:$PORT\"" <<<"$disc" || fail "discovery names another issuer: $disc"
pass "the discovery document names the issuer http://127.0.0.1:$PORT"

[ -f "$STATE_DIR/herald.db" ] || {
    ls -la "$STATE_DIR" >&2
    fail "no SQLite database at $STATE_DIR/herald.db"
}
db_owner=$(stat -c %U "$STATE_DIR/herald.db")
[ "$db_owner" = nobody ] || fail "$STATE_DIR/herald.db belongs to $db_owner, not nobody"
pass "the SQLite database was created in the state directory, owned by nobody"
conf_after=$(cd "$CONF_DIR" && ls -lA && sha256sum herald.toml)
[ "$conf_before" = "$conf_after" ] || {
    diff <(echo "$conf_before") <(echo "$conf_after") >&2 || true
    fail "something changed in the config directory $CONF_DIR"
}
pass "nothing was written in the read-only config directory"

kill -TERM "$HERALD_PID"
stopped=""
for _ in $(seq 1 50); do # 5 s
    if ! kill -0 "$RUNUSER_PID" 2>/dev/null; then
        stopped=yes
        break
    fi
    sleep 0.1
done
if [ -z "$stopped" ]; then
    show_log
    fail "Herald did not exit within 5 s of SIGTERM"
fi
rc=0
wait "$RUNUSER_PID" || rc=$?
RUNUSER_PID=""
[ "$rc" = 0 ] || {
    show_log
    fail "Herald exited with status $rc after SIGTERM, expected 0"
}
grep -q 'stopped' "$LOG" || {
    show_log
    fail "Herald's log does not say it stopped"
}
pass "SIGTERM: Herald exited 0 within 5 s"
if runuser -u nobody -- env -i PATH=/usr/bin:/bin HERALD_HEALTHCHECK_PORT="$PORT" "$HEALTHCHECK_SCRIPT" 2>/dev/null; then
    fail "the health-check script says healthy with Herald stopped"
fi
pass "the health-check script fails once Herald is gone"

# ---------------------------------------------------------------------------------------------
step "5. herald check-config on every config in deploy/"
check() { # label file
    local out
    if ! out=$(env -i PATH=/usr/bin:/bin HERALD_UPSTREAM_AUTH0_SECRET=check-config-dummy \
        "$HERALD" check-config --config "$2" 2>&1); then
        printf '%s\n' "$out" >&2
        fail "herald check-config rejects $1"
    fi
    pass "check-config accepts $1"
}
check "the image's config ($(basename "$IMAGE_CONFIG"))" "$IMAGE_CONFIG"
check "the compose config" "$WORK/compose.herald.toml"
check "the Kubernetes ConfigMap's herald.toml" "$WORK/k8s.herald.toml"

echo "deploy-test: every check passed"
echo "$passed passed, 0 failed"
