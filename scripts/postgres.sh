#!/usr/bin/env bash
# postgres.sh: a throw-away PostgreSQL server for the integration tests of
# connectors/postgres.
#
#   scripts/postgres.sh start   install PostgreSQL from Debian packages if
#                               missing, start a new cluster on a free port
#                               bound to 127.0.0.1 and print its settings:
#                                 LIMINAL_PG_URL=postgres://liminal@127.0.0.1:<port>/liminal
#                                 LIMINAL_PG_PASSWORD=<random, per start>
#                                 LIMINAL_PG_DATA=<data directory>
#   scripts/postgres.sh stop [DATA]  stop the cluster of DATA (default
#                               $LIMINAL_PG_DATA, else the last one started)
#                               and remove its data directory
#   scripts/postgres.sh env     print the settings of the last one started
#
# Every start gets its own cluster (own data directory, port and password),
# so that concurrent test runs never stop each other's server. initdb runs
# once: its result is cached as a template under
# $LIMINAL_CACHE/postgres/template-<version> and copied for each start.
# PostgreSQL refuses to run as root: as root the server runs as the
# "postgres" OS user (runuser), which owns the data directory.
set -euo pipefail

cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}/postgres"
mkdir -p "$cache"
last="$cache/last.env"

die() { echo "postgres.sh: $*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}

install_pg() {
  if [[ -n "$(bindir)" && -x "$(bindir)/initdb" ]]; then
    return
  fi
  echo "postgres.sh: installing PostgreSQL from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y --no-install-recommends postgresql >&2; then
    as_root apt-get update >&2
    as_root apt-get install -y --no-install-recommends postgresql >&2
  fi
  [[ -n "$(bindir)" ]] || die "PostgreSQL binaries not found after apt-get install"
}

# run_pg runs a PostgreSQL binary as the user that owns the clusters.
run_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

# template makes (once) an initdb'd data directory to copy from.
template() {
  local bin ver tpl tmp
  bin="$(bindir)"
  ver="$(basename "$(dirname "$bin")")"
  tpl="$cache/template-$ver"
  if [[ -f "$tpl/PG_VERSION" ]]; then
    echo "$tpl"
    return
  fi
  tmp="$(mktemp -d /tmp/liminal-pg-init.XXXXXX)"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$tmp"; fi
  run_pg "$bin/initdb" -D "$tmp/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1 ||
    { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
  cat >>"$tmp/data/postgresql.conf" <<'EOF'
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
EOF
  rm -rf "$tpl.tmp.$$"
  cp -a "$tmp/data" "$tpl.tmp.$$"
  mv -T "$tpl.tmp.$$" "$tpl" 2>/dev/null || rm -rf "$tpl.tmp.$$" # lost a race: fine
  rm -rf "$tmp"
  echo "$tpl"
}

start() {
  install_pg
  local bin tpl dir port pw
  bin="$(bindir)"
  tpl="$(template)"
  dir="$(mktemp -d /tmp/liminal-pg.XXXXXX)"
  cp -a "$tpl" "$dir/data"
  chmod 700 "$dir/data"
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres: "$dir"; fi
  pw="$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')"
  for try in 1 2 3; do
    port="$(free_port)"
    if run_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >&2; then
      break
    fi
    [[ $try -lt 3 ]] || { cat "$dir/server.log" >&2; rm -rf "$dir"; die "server did not start"; }
  done
  local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres)
  run_pg "${psql[@]}" >&2 <<EOF
CREATE ROLE liminal LOGIN PASSWORD '$pw';
CREATE DATABASE liminal OWNER liminal;
EOF
  {
    echo "LIMINAL_PG_URL=postgres://liminal@127.0.0.1:$port/liminal"
    echo "LIMINAL_PG_PASSWORD=$pw"
    echo "LIMINAL_PG_DATA=$dir"
  } | tee "$last"
}

stop() {
  local dir="${1:-${LIMINAL_PG_DATA:-}}"
  if [[ -z "$dir" && -f "$last" ]]; then
    dir="$(sed -n 's/^LIMINAL_PG_DATA=//p' "$last")"
  fi
  [[ -n "$dir" ]] || die "stop: which cluster? (pass its data directory or set LIMINAL_PG_DATA)"
  [[ "$dir" == /tmp/liminal-pg.* ]] || die "stop: $dir is not a cluster started by this script"
  if [[ -f "$dir/data/PG_VERSION" ]]; then
    run_pg "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  fi
  rm -rf "$dir"
  if [[ -f "$last" ]] && grep -qx "LIMINAL_PG_DATA=$dir" "$last"; then rm -f "$last"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  env) [[ -f "$last" ]] && cat "$last" || die "no server started" ;;
  *) die "usage: $0 start|stop [DATA]|env" ;;
esac
