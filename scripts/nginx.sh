#!/usr/bin/env bash
# nginx in front of an orderflow server, with deploy/nginx/orderflow.conf as its configuration:
# for the tests (a private, unprivileged nginx whose pid file, logs and temporary files all live
# in one directory) and for rendering the production file with other ports.
#
#   scripts/nginx.sh render <listen-address:port> <backend-port> [access-log]   prints the config
#   scripts/nginx.sh start  <dir> <backend-port> [listen-port]   prints the port nginx listens on
#   scripts/nginx.sh reload <dir> <backend-port>   points a running nginx at another server port
#   scripts/nginx.sh stop   <dir>
#
# When we are root, nginx runs as www-data (created by Debian's nginx-common).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
template="$root/deploy/nginx/orderflow.conf"
cmd=${1:?usage: nginx.sh render|start|reload|stop ...}

as_worker() {
  if [ "$(id -u)" = 0 ]; then runuser -u www-data -- "$@"; else "$@"; fi
}

# The three tagged lines of deploy/nginx/orderflow.conf, with other values; nothing else changes.
render() {
  local listen=$1 backend=$2 log=${3:-/var/log/nginx/orderflow.access.log}
  [[ $backend =~ ^[0-9]+$ ]] || { echo "nginx.sh: backend port must be a number" >&2; return 2; }
  sed -e "s|^\(\s*\)listen .*;\(\s*# orderflow:listen\)$|\1listen $listen;\2|" \
      -e "s|^\(\s*\)server 127\.0\.0\.1:[0-9]* \(.*# orderflow:backend\)$|\1server 127.0.0.1:$backend \2|" \
      -e "s|^\(\s*\)access_log [^ ]* \(.*# orderflow:access_log\)$|\1access_log $log \2|" \
      "$template"
}

# The main configuration of a test nginx: everything under $dir, one worker, no daemon users.
write_config() {
  local dir=$1 listen=$2 backend=$3
  mkdir -p "$dir/tmp"
  touch "$dir/error.log"
  render "127.0.0.1:$listen" "$backend" "$dir/access.log" >"$dir/orderflow.conf"
  cat >"$dir/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/orderflow.conf;
}
CONF
  echo "$listen" >"$dir/listen-port"
  if [ "$(id -u)" = 0 ]; then chown -R www-data:www-data "$dir"; fi
}

listening() {
  (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

master_pid() {
  [ -f "$1/nginx.pid" ] && cat "$1/nginx.pid"
}

case "$cmd" in
  render)
    render "${2:?listen address required}" "${3:?backend port required}" "${4:-}"
    ;;
  start)
    dir=${2:?directory required}
    backend=${3:?backend port required}
    . "$root/scripts/lib.sh"
    mkdir -p "$dir"
    chmod 755 "$dir"
    # A port nothing listens on; another process may take it before nginx binds it, so a failed
    # start is tried again on another port.
    for attempt in 1 2 3 4 5; do
      listen=${4:-$(free_port $((20000 + (RANDOM % 40) * 100)))}
      write_config "$dir" "$listen" "$backend"
      if as_worker nginx -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>>"$dir/error.log"; then
        for _ in $(seq 50); do
          if listening "$listen"; then echo "$listen"; exit 0; fi
          sleep 0.1
        done
      fi
      [ -n "${4:-}" ] && break
    done
    echo "nginx.sh: nginx did not start in $dir" >&2
    tail -n 20 "$dir/error.log" >&2
    exit 1
    ;;
  reload)
    # New configuration, then HUP: the master starts workers that use it and stops the old ones
    # gracefully. Returns once every old worker is gone, so no request reaches the old backend.
    dir=${2:?directory required}
    backend=${3:?backend port required}
    master=$(master_pid "$dir") || { echo "nginx.sh: no nginx in $dir" >&2; exit 1; }
    old_workers=$(ps -o pid= --ppid "$master" || true)
    write_config "$dir" "$(cat "$dir/listen-port")" "$backend"
    kill -HUP "$master"
    for _ in $(seq 100); do
      alive=no
      for pid in $old_workers; do kill -0 "$pid" 2>/dev/null && alive=yes; done
      [ "$alive" = no ] && exit 0
      sleep 0.05
    done
    echo "nginx.sh: old nginx workers still running in $dir" >&2
    exit 1
    ;;
  stop)
    # A fast shutdown (TERM); the master removes its pid file when it has exited.
    dir=${2:?directory required}
    master=$(master_pid "$dir") || exit 0
    kill -TERM "$master" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$master" 2>/dev/null || exit 0
      sleep 0.05
    done
    workers=$(ps -o pid= --ppid "$master" || true)
    kill -KILL "$master" $workers 2>/dev/null || true
    ;;
  *)
    echo "usage: nginx.sh render|start|reload|stop ..." >&2
    exit 2
    ;;
esac
