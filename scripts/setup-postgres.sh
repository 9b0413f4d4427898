#!/usr/bin/env bash
# Installs PostgreSQL 15 and pgvector, and starts a private server for the gallery's database
# backend (the `postgres` feature) on a loopback port.
#
#   scripts/setup-postgres.sh start [DIR] [PORT]   install if needed, then start; prints the URL
#   scripts/setup-postgres.sh stop [DIR]
#
# Why this way: Debian bookworm packages PostgreSQL 15 but not pgvector; trixie's pgvector
# 0.8.0 source package builds against PostgreSQL 15 in seconds. Its source is fetched with
# `apt-get source` from a private sources list (the machine's own Debian mirror, suite trixie,
# deb-src only), so the machine's own package lists are not touched. `initdb` refuses to run as
# root: the server runs as the `postgres` user on a data folder of its own, trust
# authentication on 127.0.0.1 only.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
PGVECTOR_VERSION=0.8.0-1
action=${1:-start}
dir=$(realpath -m "${2:-${TMPDIR:-/tmp}/reid-postgres}")
port=${3:-54329}

install_postgres() {
  if [ -x "$PGBIN/postgres" ] && [ -f /usr/include/postgresql/15/server/postgres.h ] \
    && command -v dpkg-source > /dev/null; then
    return
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    postgresql-15 postgresql-server-dev-15 dpkg-dev make gcc > /dev/null
}

install_pgvector() {
  if [ -f /usr/share/postgresql/15/extension/vector.control ]; then
    return
  fi
  local work sources mirror
  work=$(mktemp -d)
  mkdir -p "$work/sources" "$work/lists/partial" "$work/cache/archives/partial"
  # The machine's own first Debian mirror, for source packages of trixie.
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2> /dev/null \
    || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  cat > "$work/sources/trixie-src.sources" <<SRC
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # APT::Sandbox::User: the private folders belong to whoever runs this, not to `_apt`.
  local apt_opts=(-o "APT::Sandbox::User=$(id -un)" -o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$work/sources"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  apt-get "${apt_opts[@]}" -qq update
  (cd "$work" && apt-get "${apt_opts[@]}" -qq source "pgvector=$PGVECTOR_VERSION" > /dev/null)
  make -s -C "$work"/pgvector-0.8.0 PG_CONFIG="$PGBIN/pg_config" OPTFLAGS="" > /dev/null
  make -s -C "$work"/pgvector-0.8.0 PG_CONFIG="$PGBIN/pg_config" OPTFLAGS="" install > /dev/null
  rm -rf "$work"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$action" in
  start)
    install_postgres
    install_pgvector
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres "$dir"
      as_postgres "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 > /dev/null
    fi
    if ! as_postgres "$PGBIN/pg_ctl" -D "$dir" status > /dev/null 2>&1; then
      as_postgres "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" > /dev/null
    fi
    as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c \
      "CREATE EXTENSION IF NOT EXISTS vector" postgres > /dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_postgres "$PGBIN/pg_ctl" -D "$dir" -m fast stop > /dev/null
    ;;
  *)
    echo "usage: $0 start|stop [DIR] [PORT]" >&2
    exit 2
    ;;
esac
