#!/usr/bin/env bash
# A private Citus cluster for orderflow: a coordinator and two workers on loopback, each a
# cluster of scripts/pg.sh with Citus preloaded, the extension created in their orderflow
# database and the workers added to the coordinator.
#
#   scripts/citus.sh check                  exit 0 when Citus is installed for PostgreSQL 15
#   scripts/citus.sh start <dir> <port>     coordinator on <port>, workers on <port>+1, <port>+2;
#                                           prints the coordinator's owner URL
#   scripts/citus.sh stop|kill <dir>        stop all three
#   scripts/citus.sh worker-dir <dir> <n>   the directory of worker n (1 or 2)
#
# Citus is not a Debian package. `check` says how to get it; nothing here downloads or builds it.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?usage: citus.sh check|start|stop|kill|worker-dir <dir> [port]}

pkglibdir() { "$PGBIN/pg_config" --pkglibdir 2>/dev/null || /usr/bin/pg_config --pkglibdir; }

check() {
  local lib
  lib=$(pkglibdir)
  if [ -f "$lib/citus.so" ]; then return 0; fi
  cat >&2 <<EOF
citus.sh: Citus is not installed for PostgreSQL 15 (no $lib/citus.so).
Citus is not packaged by Debian; build it from its repository (v13.2.x supports PostgreSQL 15):
  apt-get install postgresql-server-dev-15 liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libpam0g-dev
  git clone https://github.com/citusdata/citus && cd citus && git checkout v13.2.2
  # Debian's 15.20 headers declare have_createdb_privilege(): rename Citus's own static
  # copy in src/include/pg_version_compat.h (e.g. to citus_have_createdb_privilege)
  ./configure --without-libcurl && make -j"\$(nproc)" && make install
Then run make test-citus again.
EOF
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_at() { # psql_at <dir> <port> <sql>
  as_owner "$PGBIN/psql" -h "$1/sock" -p "$2" -U postgres -d orderflow -qAtX -v ON_ERROR_STOP=1 -c "$3"
}

conf="shared_preload_libraries = 'citus'
max_prepared_transactions = 200
citus.shard_count = 8
citus.multi_shard_modify_mode = 'sequential'
wal_level = logical"

case "$cmd" in
  check)
    check
    ;;
  start)
    dir=${2:?cluster directory required}
    port=${3:?port required}
    check
    mkdir -p "$dir"
    for n in 0 1 2; do
      PG_EXTRA_CONF="$conf" "$root/scripts/pg.sh" start "$dir/node$n" $((port + n)) >/dev/null
      psql_at "$dir/node$n" $((port + n)) "CREATE EXTENSION IF NOT EXISTS citus"
    done
    psql_at "$dir/node0" "$port" "SELECT citus_set_coordinator_host('127.0.0.1', $port)" >/dev/null
    for n in 1 2; do
      if ! psql_at "$dir/node0" "$port" \
          "SELECT 1 FROM pg_dist_node WHERE nodeport = $((port + n))" | grep -q 1; then
        psql_at "$dir/node0" "$port" "SELECT citus_add_node('127.0.0.1', $((port + n)))" >/dev/null
      fi
    done
    "$root/scripts/pg.sh" url "$dir/node0" "$port"
    ;;
  stop|kill)
    dir=${2:?cluster directory required}
    for n in 0 1 2; do "$root/scripts/pg.sh" "$cmd" "$dir/node$n"; done
    ;;
  worker-dir)
    dir=${2:?cluster directory required}
    echo "$dir/node${3:?worker number required}"
    ;;
  *)
    echo "usage: citus.sh check|start|stop|kill|worker-dir <dir> [port]" >&2
    exit 2
    ;;
esac
