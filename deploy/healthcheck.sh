#!/bin/bash
# Herald's container health check: GET /healthz over bash's /dev/tcp (the image has no curl).
# Exit 0 only for an HTTP 200 within the timeout. HERALD_HEALTHCHECK_PORT (default 8080) and
# HERALD_HEALTHCHECK_HOST (default 127.0.0.1) name the listener; the path is /healthz unless
# HERALD_HEALTHCHECK_PATH says otherwise (e.g. /readyz).
set -euo pipefail
host=${HERALD_HEALTHCHECK_HOST:-127.0.0.1}
port=${HERALD_HEALTHCHECK_PORT:-8080}
path=${HERALD_HEALTHCHECK_PATH:-/healthz}
exec 3<>"/dev/tcp/${host}/${port}" || { echo "healthcheck: cannot connect to ${host}:${port}" >&2; exit 1; }
printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$path" "$host" "$port" >&3
status_line=""
IFS= read -r -t 4 status_line <&3 || true
exec 3<&-
case "$status_line" in
  "HTTP/1.1 200 "*|"HTTP/1.0 200 "*) exit 0 ;;
  *) echo "healthcheck: ${path} answered: ${status_line:-nothing}" >&2; exit 1 ;;
esac
