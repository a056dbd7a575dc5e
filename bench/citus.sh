#!/usr/bin/env bash
# bench/citus.sh <build-dir>: the same server binary on plain PostgreSQL and on Citus (a
# coordinator and two workers on loopback, scripts/citus.sh), each on throwaway clusters under
# /tmp: wrk (bench/wrk.lua) for new workflows, replays of a completed workflow and reads of its
# state, then a markdown table of req/s per scenario and backend. On Citus it also reads every
# node's counters (bench/citus_counters.sql) around an idle window and around the new-workflow
# run: where the statements ran, how many were multi-shard, how many two-phase commits. Last,
# new workflows of one tracked item (stock set high enough never to run out), the one row every
# such order writes: on Citus a reference-table row, written on every node.
# A benchmark: it fails only when something does not run, never because a number is low.
#
# Knobs: BENCH_DURATION (10 s per run), BENCH_CONCURRENCY (16); HTTP_THREADS, DB_POOL_SIZE,
# LOG_LEVEL and JANITOR_INTERVAL_MS reach the server unchanged.
set -euo pipefail

build=${1:-build-release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
duration=${BENCH_DURATION:-10}
c=${BENCH_CONCURRENCY:-16}
scenarios="process-new process-replay workflow-get"
wf_head='{"orderId":"'
wf_tail='","amount":12.5,"item":"widget"}'
completed_id=bench-completed
completed_body="${wf_head}${completed_id}${wf_tail}"

die() { echo "citus-bench: $*" >&2; exit 1; }
say() { echo "citus-bench: $*" >&2; }
scripts/citus.sh check || exit 1
[[ $duration =~ ^[1-9][0-9]*$ && $c =~ ^[1-9][0-9]*$ ]] ||
  die "BENCH_DURATION and BENCH_CONCURRENCY must be positive integers"
[ -x "$build/orderflow" ] || die "no server binary at $build/orderflow"
command -v wrk >/dev/null || die "wrk is missing (scripts/deps.sh wrk)"
# The SQL is embedded at build time: a binary older than db/ migrates the old SQL.
stale=$(find db/migrations db/functions db/citus -name '*.sql' -newer "$build/orderflow" | head -n 3 | tr '\n' ' ')
[ -z "$stale" ] || echo "citus-bench: warning: $build/orderflow is older than $stale(rebuild it)" >&2

# /tmp is reachable by the postgres user wherever the project lives.
work=$(mktemp -d /tmp/orderflow-citus-bench.XXXXXX)
chmod 755 "$work"
server_pid='' child_pid=''

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
# Whatever happens: wrk, the server, the clusters; the files too, unless something failed.
cleanup() {
  local rc=$?
  if [ -n "$child_pid" ]; then kill "$child_pid" 2>/dev/null || true; wait "$child_pid" 2>/dev/null || true; fi
  stop_server
  scripts/pg.sh kill "$work/pg" >/dev/null 2>&1 || true
  scripts/citus.sh kill "$work/citus" >/dev/null 2>&1 || true
  if [ "$rc" = 0 ]; then rm -rf "$work"; else say "failed; logs kept in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. scripts/lib.sh

# wrk in the background, so that a signal reaches the trap at once.
run_child() { local rc=0; "$@" & child_pid=$!; wait "$child_pid" || rc=$?; child_pid=; return "$rc"; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }
settle() { local u; for u in "${nodes[@]}"; do q "$u" -c CHECKPOINT; done; }

# free_ports N FROM: the first port from FROM on with N free ports in a row.
free_ports() {
  local p=$2 i
  while p=$(free_port "$p"); do
    for ((i = 1; i < $1; i++)); do [ "$(free_port $((p + i)))" = $((p + i)) ] || break; done
    [ "$i" = "$1" ] && { echo "$p"; return 0; }
    p=$((p + i + 1))
  done
  return 1
}

start_server() {  # start_server <owner url> <api url> <log>
  local i body
  http_port=$(free_port 18300)
  DATABASE_URL=$2 MIGRATION_DATABASE_URL=$1 PORT=$http_port "$build/orderflow" >"$3" 2>&1 &
  server_pid=$!
  for i in $(seq 1 150); do
    if curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1; then
      # The fixture the replays and the reads use: one completed workflow.
      body=$(curl -s -X POST "http://127.0.0.1:$http_port/api/orders/process" \
        -H 'Content-Type: application/json' -d "$completed_body")
      [[ $body == *'"status": "completed"'* ]] || die "fixture: the workflow did not complete: $body"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$3" >&2
  die "the server did not come up on port $http_port"
}

run_number=$((1000000 + RANDOM * 200 + RANDOM % 200))
declare -A rps
wrk_num() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$json"; }  # a number from wrk's summary
run_wrk() {  # run_wrk <backend> <scenario> [key]: wrk's summary into rps[backend,key or scenario]
  local out=$work/wrk.out json key=${3:-$2}
  run_number=$((run_number + 1))
  BENCH_SCENARIO=$2 BENCH_RUN=$run_number BENCH_WF_HEAD=$wf_head BENCH_WF_TAIL=${tail_override:-$wf_tail} \
    BENCH_COMPLETED_ID=$completed_id BENCH_COMPLETED_BODY=$completed_body \
    run_child wrk -t $((c < 2 ? c : 2)) -c "$c" -d "${duration}s" -s bench/wrk.lua \
    "http://127.0.0.1:$http_port" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  json=$(sed -n 's/^BENCH_WRK //p' "$out")
  [ -n "$json" ] || { cat "$out" >&2; die "wrk printed no summary"; }
  rps[$1,$key]=$(awk -v n="$(wrk_num requests)" -v us="$(wrk_num duration_us)" -v p99="$(wrk_num p99_ms)" \
    -v bad=$(($(wrk_num unexpected) + $(wrk_num connect) + $(wrk_num read) + $(wrk_num write) + $(wrk_num timeout))) \
    'BEGIN { printf "%.0f (p99 %.1f ms)%s", n * 1e6 / us, p99, bad ? sprintf(", %d bad", bad) : "" }')
  say "$1 $key: ${rps[$1,$key]}"
}

# New workflows of one tracked item; on Citus the two-phase commits they caused, per workflow.
tracked_new_workflows() {  # tracked_new_workflows <backend> <owner url>
  local before after wf
  q "$2" -c "SELECT orderflow.set_stock('bench-tracked', 2000000000)" >/dev/null
  settle
  [ "$1" = citus ] && before=$(snap)
  tail_override='","amount":12.5,"item":"bench-tracked"}' run_wrk "$1" process-new process-new-tracked
  [ "$1" = citus ] || return 0
  sleep 2
  after=$(snap)
  wf=$(q "$2" -c "SELECT count(*) FROM orderflow.reservations WHERE item = 'bench-tracked'")
  paste -d' ' <(echo "$before") <(echo "$after") | awk -v wf="$wf" '
    { p += $13 - $6 } END { if (wf > 0) printf "\nTracked item: %d new workflows, %.2f two-phase commits prepared per workflow (all nodes).\n", wf, p / wf }' \
    >>"$work/counters.md"
}

snap() { local n; for n in 0 1 2; do echo "node$n $(q "${nodes[$n]}" -F' ' -f bench/citus_counters.sql)"; done; }

# The new-workflow run on Citus between snapshots, after an idle window of the same length with
# the same snapshots (the server's janitor and relay keep working when no request comes).
citus_new_workflows() {
  settle
  snap >"$work/s0"; sleep $((duration + 2)); snap >"$work/s1"
  run_wrk citus process-new
  sleep 2  # idle backends flush pg_stat_database within a second
  snap >"$work/s2"
  local wf
  wf=$(q "${nodes[0]}" -c "SELECT count(*) FROM orderflow.workflows WHERE status = 'completed'
         AND order_id >= '$run_number' AND order_id < '$((run_number + 1))'")
  {
    echo
    echo "Citus counters, deltas per node: idle = $((duration + 2)) s without requests; new = the"
    echo "process-new run ($wf workflows completed) and 2 s after it, the same length."
    echo
    echo "| node | window | conn_new | conn_reused | single_shard | multi_shard | 2pc_prepared | xact_commit |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    paste -d' ' "$work/s0" "$work/s1" "$work/s2" | awk -v wf="$wf" '
      { for (w = 0; w < 2; w++) {
          printf "| %s | %s |", $1, w ? "new" : "idle"
          for (i = 2; i <= 7; i++) { d = $(i + 7 * (w + 1)) - $(i + 7 * w); printf " %d |", d; t[w, i] += d
                                     if ($1 != "node0") tw[w, i] += d }
          print "" } }
      END { if (wf == 0) exit
        printf "\nPer new workflow, all nodes (net of idle in brackets): multi-shard queries %.2f [%.2f],",
          t[1,5] / wf, (t[1,5] - t[0,5]) / wf
        printf " 2PC prepared %.3f [%.3f], single-shard queries on workers %.2f [%.2f],",
          t[1,6] / wf, (t[1,6] - t[0,6]) / wf, tw[1,4] / wf, (tw[1,4] - tw[0,4]) / wf
        printf " on the coordinator %.2f [%.2f], commits on workers %.2f [%.2f]\n",
          (t[1,4] - tw[1,4]) / wf, (t[1,4] - tw[1,4] - t[0,4] + tw[0,4]) / wf,
          tw[1,7] / wf, (tw[1,7] - tw[0,7]) / wf }'
  } >"$work/counters.md"
}

report_errors() {  # report_errors <backend> <server log> <postgres logs...>
  local backend=$1 log=$2; shift 2
  say "$backend: server log lines not at level info: $(grep -vc '"level":"info"' "$log" || true)"
  grep -v '"level":"info"' "$log" | head -n 5 >&2 || true
  say "$backend: postgres ERROR/FATAL lines: $(cat "$@" | grep -cE ' (ERROR|FATAL|PANIC): ' || true)"
  cat "$@" | grep -E -A1 ' (ERROR|FATAL|PANIC): ' | head -n 10 >&2 || true
}

bench_backend() {  # bench_backend <backend> <owner url> <api url> <postgres logs...>
  local backend=$1 owner=$2 api=$3 s; shift 3
  DATABASE_URL=$owner "$build/orderflow" --migrate >"$work/$backend-migrate.log" 2>&1 ||
    { cat "$work/$backend-migrate.log" >&2; die "$backend: migration failed"; }
  start_server "$owner" "$api" "$work/$backend-server.log"
  for s in $scenarios; do
    if [ "$backend" = citus ] && [ "$s" = process-new ]; then citus_new_workflows; continue; fi
    settle
    run_wrk "$backend" "$s"
  done
  tracked_new_workflows "$backend" "$owner"
  stop_server
  report_errors "$backend" "$work/$backend-server.log" "$@"
}

say "server $build/orderflow, ${duration} s per run at concurrency $c"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
port=$(free_ports 1 27100) || die "no free port"
nodes=("$(scripts/pg.sh start "$work/pg" "$port")")
bench_backend postgres "${nodes[0]}" "$(scripts/pg.sh api-url "$work/pg" "$port")" "$work/pg/log"
scripts/pg.sh stop "$work/pg"

port=$(free_ports 3 27200) || die "no three free ports in a row"
say "starting Citus on ports $port-$((port + 2))"
scripts/citus.sh start "$work/citus" "$port" >/dev/null
nodes=()
for n in 0 1 2; do
  nodes+=("postgresql://postgres@127.0.0.1:$((port + n))/orderflow")
  # Counters on; 2PC recovery off, so that pg_dist_transaction keeps every prepared transaction.
  q "${nodes[$n]}" -c "ALTER SYSTEM SET citus.enable_stat_counters = on" \
    -c "ALTER SYSTEM SET citus.recover_2pc_interval = -1" -c "SELECT pg_reload_conf()" >/dev/null
done
bench_backend citus "${nodes[0]}" "$(scripts/pg.sh api-url "$work/citus/node0" "$port")" \
  "$work"/citus/node{0,1,2}/log

echo
echo "| scenario (c=$c, ${duration} s) | PostgreSQL req/s | Citus req/s |"
echo "|---|---:|---:|"
for s in $scenarios process-new-tracked; do echo "| $s | ${rps[postgres,$s]} | ${rps[citus,$s]} |"; done
echo
echo "Load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end ($(nproc) cores)."
cat "$work/counters.md"
