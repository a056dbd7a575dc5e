#!/usr/bin/env bash
# A private PgBouncer in transaction pooling mode in front of a private cluster, for the test
# that runs the end-to-end suite through it (the front must keep no session state).
#
#   scripts/pgbouncer.sh start <dir> <listen-port> <postgres-port>   prints the orderflow_app URL
#   scripts/pgbouncer.sh stop  <dir>
#
# Runs as the postgres user when we are root (PgBouncer refuses root).
set -euo pipefail

cmd=${1:?usage: pgbouncer.sh start|stop <dir> [listen-port postgres-port]}
dir=${2:?directory required}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    listen=${3:?listen port required}
    pg=${4:?postgres port required}
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
; Timeouts are set on the server connections: PgBouncer cannot pass the client's startup
; options through, and the front keeps no session state to set them itself.
orderflow = host=127.0.0.1 port=$pg dbname=orderflow connect_query='SET statement_timeout = 5000; SET lock_timeout = 2000'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
ignore_startup_parameters = options,extra_float_digits
server_connect_timeout = 2
server_login_retry = 1
query_wait_timeout = 5
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    printf '"orderflow_app" ""\n"postgres" ""\n' >"$dir/userlist.txt"
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir"; fi
    as_owner pgbouncer -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; exit 1; }
    listening=no
    for _ in $(seq 50); do
      if (echo >"/dev/tcp/127.0.0.1/$listen") 2>/dev/null; then listening=yes; break; fi
      sleep 0.1
    done
    if [ "$listening" != yes ]; then
      echo "pgbouncer.sh: PgBouncer is not listening on $listen" >&2
      tail -n 20 "$dir/pgbouncer.log" >&2
      exit 1
    fi
    echo "postgresql://orderflow_app@127.0.0.1:${listen}/orderflow"
    ;;
  stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
      kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
      for _ in $(seq 50); do [ -f "$dir/pgbouncer.pid" ] || break; sleep 0.1; done
    fi
    ;;
  *)
    echo "usage: pgbouncer.sh start|stop <dir> [listen-port postgres-port]" >&2
    exit 2
    ;;
esac
