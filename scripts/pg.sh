#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for orderflow, run as the `postgres` user when we are root
# (the server refuses to run as root) and as ourselves otherwise.
#
#   scripts/pg.sh start <dir> <port>   create (first time) and start; prints the owner's URL
#   scripts/pg.sh stop  <dir>          fast shutdown (no-op when not running)
#   scripts/pg.sh kill  <dir>          immediate shutdown, for throwaway clusters
#   scripts/pg.sh url   <dir> <port>   the owner's URL (superuser postgres: migrations, operators)
#   scripts/pg.sh api-url <dir> <port> the URL of orderflow_app, the least-privileged login the
#                                      server uses (member of orderflow_api: EXECUTE on the API
#                                      functions only, see db/migrations/003_roles.sql)
#   scripts/pg.sh admin-url <dir> <port> the URL of orderflow_console, the login the console's
#                                      SQL runs as (ADMIN_DATABASE_URL; member of
#                                      orderflow_operator, not of orderflow_api)
#   scripts/pg.sh dir   <name>         where a cluster called <name> lives: .pg/<name> in the
#                                      project when the postgres user can reach it, else
#                                      /var/tmp/orderflow-<hash>/<name> (e.g. a clone under /root)
#
# <dir> holds data/, the socket directory sock/ and log. The cluster listens on 127.0.0.1:<port>
# and on <dir>/sock, trusts local connections, and has a database named orderflow and the roles
# orderflow_api (NOLOGIN) and orderflow_app (LOGIN, member of orderflow_api), and
# orderflow_operator (NOLOGIN; the migrations grant it its rights) and orderflow_console (LOGIN,
# member of orderflow_operator). PG_EXTRA_CONF, when set, is appended to a new cluster's
# postgresql.conf.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg.sh start|stop|kill|url|api-url|admin-url|dir <dir> [port]}
dir=${2:?cluster directory required}
root=$(cd "$(dirname "$0")/.." && pwd)
port=${3:-25432}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() { echo "postgresql://postgres@127.0.0.1:${port}/orderflow"; }
api_url() { echo "postgresql://orderflow_app@127.0.0.1:${port}/orderflow"; }
admin_url() { echo "postgresql://orderflow_console@127.0.0.1:${port}/orderflow"; }

running() { [ -f "$dir/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; chmod 700 "$dir"; fi
    if ! as_owner test -w "$dir"; then
      echo "pg.sh: the postgres user cannot write $dir; choose a directory it can reach" >&2
      exit 1
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      as_owner mkdir -p "$dir/sock"
      cat >>"$dir/data/postgresql.conf" <<EOF
# orderflow private cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 200
shared_buffers = 256MB
fsync = on
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
      # PG_EXTRA_CONF: more settings for a new cluster (scripts/citus.sh preloads Citus).
      if [ -n "${PG_EXTRA_CONF:-}" ]; then printf '%s\n' "$PG_EXTRA_CONF" >>"$dir/data/postgresql.conf"; fi
    fi
    if ! running; then
      as_owner "$PGBIN/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/log" -w -t 60 start >/dev/null \
        || { tail -n 30 "$dir/log" >&2; exit 1; }
    fi
    if ! as_owner "$PGBIN/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'orderflow'" | grep -q 1; then
      as_owner "$PGBIN/createdb" -h "$dir/sock" -p "$port" -U postgres orderflow
    fi
    as_owner "$PGBIN/psql" -h "$dir/sock" -p "$port" -U postgres -d orderflow -qX -v ON_ERROR_STOP=1 <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        CREATE ROLE orderflow_api NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_app') THEN
        CREATE ROLE orderflow_app LOGIN IN ROLE orderflow_api;
    END IF;
    -- The operators' role is the migrations' to grant; created here NOLOGIN when they have not
    -- run yet, so that the console's login can be made a member of it either way.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_operator') THEN
        CREATE ROLE orderflow_operator NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_console') THEN
        CREATE ROLE orderflow_console LOGIN IN ROLE orderflow_operator;
    END IF;
END
$$;
SQL
    url
    ;;
  stop)
    if running; then as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
    ;;
  kill)
    if running; then as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true; fi
    ;;
  url)
    url
    ;;
  api-url)
    api_url
    ;;
  admin-url)
    admin_url
    ;;
  dir)
    if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$root" 2>/dev/null; then
      echo "$root/.pg/$dir"
    else
      echo "/var/tmp/orderflow-$(echo -n "$root" | md5sum | cut -c1-8)/$dir"
    fi
    ;;
  *)
    echo "usage: pg.sh start|stop|kill|url|api-url|admin-url|dir <dir> [port]" >&2
    exit 2
    ;;
esac
