#!/usr/bin/env bash
# bench/run.sh <build-dir>: what `make bench` runs. A benchmark, not a test: it measures and
# reports, and never fails because a number is low.
#
# On a throwaway PostgreSQL cluster under /tmp, for each history size: a fresh database, the
# schema, the history (bench/history.sql), one server; then for each scenario and concurrency,
# wrk against the server and pgbench calling the same SQL statement with the same arguments at
# the same concurrency on the same database: the ceiling the front is measured against. The
# results go to bench/RESULTS.jsonl (the raw numbers) and bench/RESULTS.md (the report, made
# from RESULTS.jsonl alone by bench/report.py, so it can be regenerated).
#
# Knobs (environment):
#   BENCH_DURATION     seconds per wrk run and per pgbench run      (10)
#   BENCH_CONCURRENCY  connections: wrk -c and pgbench -c           ("16 64")
#   BENCH_HISTORY      finished workflows and orders preloaded      ("0 100000 1000000")
#   BENCH_SCENARIOS    subset of the five scenarios                 (all)
#   BENCH_RESULTS      where the report goes                        (bench/RESULTS.md)
#   HTTP_THREADS, DB_POOL_SIZE, LOG_LEVEL, JANITOR_INTERVAL_MS reach the server unchanged.
set -euo pipefail

build=${1:-build-release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

all_scenarios="orders-new orders-replay process-new process-replay workflow-get"
duration=${BENCH_DURATION:-10}
concurrency=${BENCH_CONCURRENCY:-16 64}
history=${BENCH_HISTORY:-0 100000 1000000}
scenarios=${BENCH_SCENARIOS:-$all_scenarios}
results_md=${BENCH_RESULTS:-bench/RESULTS.md}
results_jsonl=${results_md%.md}.jsonl

# The request bodies, handed both to wrk (environment) and to pgbench (-D), so both send the
# same bytes. A new workflow's body is wf_head <id> wf_tail.
order_body='{"item":"widget","quantity":1}'
wf_head='{"orderId":"'
wf_tail='","amount":12.5,"item":"widget"}'
completed_id=bench-completed
completed_body="${wf_head}${completed_id}${wf_tail}"
replay_key=bench-replay

die() { echo "bench: $*" >&2; exit 1; }

check_knobs() {
  [[ $duration =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a positive number of seconds"
  local c n s
  for c in $concurrency; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "bad BENCH_CONCURRENCY: $c"; done
  for n in $history; do [[ $n =~ ^[0-9]+$ ]] || die "bad BENCH_HISTORY: $n"; done
  for s in $scenarios; do
    [[ " $all_scenarios " == *" $s "* ]] || die "unknown scenario $s (known: $all_scenarios)"
  done
  [ -x "$build/orderflow" ] || die "no server binary at $build/orderflow (make bench builds it)"
  command -v wrk >/dev/null || die "wrk is missing (scripts/deps.sh wrk)"
  command -v pgbench >/dev/null || die "pgbench is missing (postgresql-15)"
}

# /tmp is reachable by the postgres user wherever the project lives.
work=$(mktemp -d /tmp/orderflow-bench.XXXXXX)
chmod 755 "$work"
server_pid=

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# Runs a long command (wrk, pgbench, the history load) in the background and waits for it: a
# signal then reaches our trap at once, not when the command ends, and cleanup stops it.
child_pid=
run_child() {
  local rc=0
  "$@" &
  child_pid=$!
  wait "$child_pid" || rc=$?
  child_pid=
  return "$rc"
}

# Nothing is left running, whatever happens: the command in flight, the server, the cluster,
# then the files.
cleanup() {
  if [ -n "$child_pid" ]; then kill "$child_pid" 2>/dev/null || true; wait "$child_pid" 2>/dev/null || true; fi
  stop_server
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || scripts/pg.sh kill "$work/pg" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. scripts/lib.sh

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# A fresh database for each history size, so sizes never add up.
fresh_database() {
  psql_q "${db_url%/orderflow}/postgres" \
    -c "DROP DATABASE IF EXISTS orderflow WITH (FORCE)" -c "CREATE DATABASE orderflow"
  DATABASE_URL=$db_url "$build/orderflow" --migrate >/dev/null
}

load_history() {
  local n=$1 started=$SECONDS
  run_child psql -X -q -v ON_ERROR_STOP=1 -v n="$n" -f bench/history.sql "$db_url" >/dev/null
  echo "bench: history of $n workflows and orders loaded in $((SECONDS - started)) s"
}

start_server() {
  local log=$1 i
  http_port=$(free_port 18080)
  DATABASE_URL=$api_url MIGRATION_DATABASE_URL=$db_url PORT=$http_port "$build/orderflow" >"$log" 2>&1 &
  server_pid=$!
  for i in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  die "the server did not come up on port $http_port"
}

# The replay and read scenarios need something to replay: one order created with the replay
# key, one completed workflow. Made through the front, and checked.
make_fixtures() {
  local status body
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$http_port/orders" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $replay_key" -d "$order_body")
  [ "$status" = 201 ] || die "fixture: POST /orders answered $status, not 201"
  body=$(curl -s -X POST "http://127.0.0.1:$http_port/api/orders/process" \
    -H 'Content-Type: application/json' -d "$completed_body")
  [[ $body == *'"status": "completed"'* ]] || die "fixture: the workflow did not complete: $body"
}

# VmHWM is the process's peak resident set. Writing 5 to clear_refs resets it (Linux ≥ 4.0),
# so each wrk run gets its own peak; where that is refused, the peak is since start-up.
rss_scope=run
reset_peak() {
  echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null || rss_scope=since-start
}
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status"; }

# A number unique to each wrk or pgbench run: 7 digits, random start, so that the keys and
# order ids of different runs never collide (they begin with it and all have the same length).
run_number=$((1000000 + RANDOM * 200 + RANDOM % 200))
next_run() { run_number=$((run_number + 1)); }

# Rows a run created: idempotency keys, or completed workflows, whose id begins with the run's
# number (a range on the primary key, so it is cheap at any history size).
created_rows() {
  local scenario=$1 run=$2
  case $scenario in
    orders-new)
      psql -X -Atq "$db_url" -c "SELECT count(*) FROM orderflow.idempotency_keys
                                  WHERE key >= '$run' AND key < '$((run + 1))'" ;;
    process-new)
      psql -X -Atq "$db_url" -c "SELECT count(*) FROM orderflow.workflows
                                  WHERE order_id >= '$run' AND order_id < '$((run + 1))'
                                    AND status = 'completed'" ;;
    *) echo null ;;
  esac
}

# Before every measured run, wrk's and pgbench's alike: a CHECKPOINT, and — once the tables hold
# data — VACUUM ANALYZE, so that autovacuum does not wake up inside a measured window. Without
# it, the write scenarios at history 0 grow small tables from nothing, autovacuum's thresholds
# (a share of the table size) are crossed again and again, and the read scenarios after them
# measured slower on the empty database than with 1 000 000 rows of history. A fresh database is
# left unvacuumed, as a freshly migrated one is (see history.sql).
settle() {
  psql_q "$db_url" -c CHECKPOINT
  local rows
  rows=$(psql -X -Atq "$db_url" -c "SELECT (SELECT count(*) FROM orderflow.workflows)
                                           + (SELECT count(*) FROM orderflow.idempotency_keys)")
  if [ "$rows" -gt 1000 ]; then
    psql_q "$db_url" -c "VACUUM (ANALYZE) orderflow.workflows, orderflow.workflow_steps,
      orderflow.payments, orderflow.reservations, orderflow.outbox, orderflow.orders,
      orderflow.idempotency_keys, orderflow.finished_counts"
  fi
}

run_wrk() {
  local scenario=$1 c=$2 out=$work/wrk.out threads=$(( $2 < 2 ? $2 : 2 ))
  next_run
  settle
  reset_peak
  BENCH_SCENARIO=$scenario BENCH_RUN=$run_number BENCH_ORDER_BODY=$order_body \
    BENCH_WF_HEAD=$wf_head BENCH_WF_TAIL=$wf_tail BENCH_COMPLETED_ID=$completed_id \
    BENCH_COMPLETED_BODY=$completed_body BENCH_REPLAY_KEY=$replay_key \
    run_child wrk -t "$threads" -c "$c" -d "${duration}s" -s bench/wrk.lua "http://127.0.0.1:$http_port" \
    >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  wrk_json=$(sed -n 's/^BENCH_WRK //p' "$out")
  [ -n "$wrk_json" ] || { cat "$out" >&2; die "wrk printed no summary"; }
  wrk_rss=$(peak_rss_kib)
  wrk_rows=$(created_rows "$scenario" "$run_number")
}

# pgbench exits 2 when a client aborts on an error; that is a result to report, not a crash.
run_pgbench() {
  local scenario=$1 c=$2 out=$work/pgbench.out threads=$(( $2 < 2 ? $2 : 2 ))
  next_run
  settle
  run_child pgbench -n -M prepared -c "$c" -j "$threads" -T "$duration" -f "bench/pgbench/$scenario.sql" \
    -D run="$run_number" -D i=0 -D order_body="$order_body" -D wf_head="$wf_head" \
    -D wf_tail="$wf_tail" -D completed_id="$completed_id" -D completed_body="$completed_body" \
    -D replay_key="$replay_key" "$db_url" >"$out" 2>&1 || true
  pg_tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -n 1)
  pg_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
  pg_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
  pg_aborted=$(grep -c 'aborted in command' "$out" || true)
  if [ -z "$pg_tx" ]; then cat "$out" >&2; die "pgbench printed no result"; fi
  if [ "$pg_aborted" -gt 0 ]; then
    echo "bench: pgbench: $pg_aborted clients aborted on errors; the first:" >&2
    grep -m 1 -A 1 'aborted in command' "$out" >&2
  fi
  pg_rows=$(created_rows "$scenario" "$run_number")
}

record() {
  local n=$1 scenario=$2 c=$3
  printf '{"history": %d, "scenario": "%s", "concurrency": %d, "duration_s": %d, "wrk": %s, ' \
    "$n" "$scenario" "$c" "$duration" "$wrk_json" >>"$work/results.jsonl"
  printf '"wrk_rows": %s, "rss_kib": %d, "rss_scope": "%s", ' "$wrk_rows" "$wrk_rss" "$rss_scope" \
    >>"$work/results.jsonl"
  printf '"pgbench": {"tps": %s, "transactions": %d, "failed": %d, "aborted_clients": %d, "rows": %s}}\n' \
    "${pg_tps:-0}" "$pg_tx" "${pg_failed:-0}" "$pg_aborted" "$pg_rows" >>"$work/results.jsonl"
}

# The server's settings as it reports them in its "listening" line (absent when LOG_LEVEL hides
# info lines: then the environment, or "default").
server_settings() {
  local line
  line=$(grep -m 1 '"event":"listening"' "$1" || true)
  if [ -n "$line" ]; then
    echo "$line" | sed 's/.*"httpThreads":\([0-9]*\),"dbPoolSize":\([0-9]*\),"janitorIntervalMs":\([0-9]*\).*/HTTP_THREADS=\1 DB_POOL_SIZE=\2 JANITOR_INTERVAL_MS=\3/'
  else
    echo "HTTP_THREADS=${HTTP_THREADS:-default} DB_POOL_SIZE=${DB_POOL_SIZE:-default} JANITOR_INTERVAL_MS=${JANITOR_INTERVAL_MS:-default}"
  fi
}

# What the report says about the run: one "key<TAB>value" line each.
write_meta() {
  local commit dirty=""
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  # The results of an earlier run do not make the code measured here any different.
  git diff --quiet HEAD -- . ':!bench/RESULTS.md' ':!bench/RESULTS.jsonl' 2>/dev/null ||
    dirty=" plus uncommitted changes"
  {
    printf 'date\t%s\n' "$started_at"
    printf 'finished\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)"
    printf 'command\t%s\n' "BENCH_DURATION=$duration BENCH_CONCURRENCY=\"$concurrency\" BENCH_HISTORY=\"$history\" BENCH_SCENARIOS=\"$scenarios\" make bench"
    printf 'commit\t%s\n' "$commit$dirty"
    printf 'cores\t%s\n' "$(nproc)"
    printf 'mem_kib\t%s\n' "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
    printf 'cpu\t%s\n' "$(grep -m 1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    printf 'loadavg_start\t%s\n' "$loadavg_start"
    printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'postgres\t%s\n' "$(psql -X -Atq "$db_url" -c 'SHOW server_version')"
    printf 'pg_settings\t%s\n' "$(psql -X -Atq "$db_url" -c "
      SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings
       WHERE name IN ('shared_buffers', 'max_connections', 'fsync', 'synchronous_commit',
                      'max_wal_size', 'checkpoint_timeout')")"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    printf 'server\t%s\n' "$(server_settings "$work/server-first.log") LOG_LEVEL=${LOG_LEVEL:-info}"
    printf 'build\t%s\n' "$build (CMAKE_BUILD_TYPE=Release)"
    printf 'rss_scope\t%s\n' "$rss_scope"
  } >"$work/meta.tsv"
}

bench_history_size() {
  local n=$1 scenario c
  echo "bench: === history $n"
  stop_server
  fresh_database
  load_history "$n"
  start_server "$work/server-$n.log"
  [ -f "$work/server-first.log" ] || cp "$work/server-$n.log" "$work/server-first.log"
  make_fixtures
  for scenario in $scenarios; do
    for c in $concurrency; do
      run_wrk "$scenario" "$c"
      run_pgbench "$scenario" "$c"
      record "$n" "$scenario" "$c"
      python3 bench/report.py --line "$(tail -n 1 "$work/results.jsonl")"
    done
  done
  stop_server
}

# The database's own cost of one request (issue 8's budget), on a fresh database of its own:
# bench/dbtime.sh (pgbench at one client, synchronous_commit off, minus SELECT 1) now, and
# bench/dbcost.sh (valgrind's instruction count, deterministic) once the cluster is stopped at
# the end. BENCH_DBCOST=0 skips the valgrind part.
cost_db=orderflow_cost
measure_db_time() {
  psql_q "${db_url%/orderflow}/postgres" \
    -c "DROP DATABASE IF EXISTS $cost_db WITH (FORCE)" -c "CREATE DATABASE $cost_db"
  DATABASE_URL=${db_url%/orderflow}/$cost_db "$build/orderflow" --migrate >/dev/null
  run_child bench/dbtime.sh "${db_url%/orderflow}/$cost_db" "$duration" >"$work/dbtime.txt"
  sed 's/^/bench: /' "$work/dbtime.txt"
}
measure_db_cost() {
  : >"$work/dbcost.txt"
  [ "${BENCH_DBCOST:-1}" != 0 ] || return 0
  command -v valgrind >/dev/null || { echo "bench: valgrind missing, no instruction counts"; return 0; }
  scripts/pg.sh stop "$work/pg" >/dev/null
  run_child bench/dbcost.sh "$work/pg/data" "$cost_db" "${BENCH_DBCOST_CALLS:-200}" >"$work/dbcost.txt"
  sed 's/^/bench: /' "$work/dbcost.txt"
}

main() {
  check_knobs
  local pg_port n
  started_at=$(date -u +%Y-%m-%dT%H:%MZ)
  loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
  pg_port=$(free_port 25600)
  db_url=$(scripts/pg.sh start "$work/pg" "$pg_port")
  # The server runs as in production: requests as the least-privileged orderflow_app, the schema
  # applied by the owner. pgbench uses the owner; the functions run as their owner either way.
  api_url=$(scripts/pg.sh api-url "$work/pg" "$pg_port")
  echo "bench: cluster $db_url, server $build/orderflow, ${duration} s per run"
  : >"$work/results.jsonl"
  measure_db_time
  for n in $history; do bench_history_size "$n"; done
  write_meta
  measure_db_cost
  printf 'dbtime\t%s\n' "$(awk '{printf "%s%s %s µs", (NR>1 ? ", " : ""), $2, $3}' "$work/dbtime.txt")" >>"$work/meta.tsv"
  printf 'dbcost\t%s\n' "$(awk '{printf "%s%s %s", (NR>1 ? ", " : ""), $2, $3}' "$work/dbcost.txt")" >>"$work/meta.tsv"
  { python3 bench/report.py --meta "$work/meta.tsv"; cat "$work/results.jsonl"; } >"$results_jsonl"
  python3 bench/report.py "$results_jsonl" "$results_md"
  echo "bench: written $results_md and $results_jsonl"
}

main
