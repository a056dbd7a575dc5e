#!/usr/bin/env bash
# bench/provider.sh <build-dir>: the payment-provider scenario of `make bench` (issue 10).
# New workflows (POST /api/orders/process, a new orderId per request, every answer checked to be
# `completed` by bench/wrk.lua) at BENCH_PROVIDER_CONCURRENCY connections, twice on the same
# server: charged through the in-database ledger, then through our Stripe simulator
# (tests/sim/stripe_sim.py) answering every call after BENCH_PROVIDER_LATENCY_MS. The ratio says
# whether the call's latency is hidden (no worker thread or pooled connection waits for it).
# Prints one line per run and the ratio, and writes them into the "Payment provider" section
# of bench/RESULTS.md. A benchmark: it measures and never fails because a number is low.
#
# Knobs: BENCH_DURATION (10), BENCH_PROVIDER_CONCURRENCY (64), BENCH_PROVIDER_LATENCY_MS (20),
# BENCH_RESULTS (bench/RESULTS.md).
set -euo pipefail

build=${1:-build-release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
duration=${BENCH_DURATION:-10}
connections=${BENCH_PROVIDER_CONCURRENCY:-64}
latency=${BENCH_PROVIDER_LATENCY_MS:-20}
results_md=${BENCH_RESULTS:-bench/RESULTS.md}

die() { echo "bench provider: $*" >&2; exit 1; }
[ -x "$build/orderflow" ] || die "no server binary at $build/orderflow"
command -v wrk >/dev/null || die "wrk is missing (scripts/deps.sh wrk)"

. scripts/lib.sh
work=$(mktemp -d /tmp/orderflow-bench-provider.XXXXXX)
chmod 755 "$work"
server_pid= sim_pid=
cleanup() {
  [ -z "$server_pid" ] || { kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true
  [ -z "$sim_pid" ] || { kill -TERM "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; } || true
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || scripts/pg.sh kill "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_port=$(free_port 27432)
db_url=$(scripts/pg.sh start "$work/pg" "$pg_port")
api_url=$(scripts/pg.sh api-url "$work/pg" "$pg_port")
DATABASE_URL=$db_url "$build/orderflow" --migrate >/dev/null
psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$db_url" "$@"; }

python3 tests/sim/stripe_sim.py --port 0 --port-file "$work/sim.port" >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/sim.port" ] && break; sleep 0.1; done
sim_port=$(cat "$work/sim.port") || die "the simulator did not start"
curl -sf -XPOST "http://127.0.0.1:$sim_port/_sim/faults" -H 'Content-Type: application/json' \
  -d "{\"latency_ms\": $latency}" >/dev/null || die "the simulator refused its latency"

http_port=$(free_port 18180)
DATABASE_URL=$api_url MIGRATION_DATABASE_URL=$db_url PORT=$http_port \
  STRIPE_API_KEY=sk_test_bench SERVER_ID=bench "$build/orderflow" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$http_port/health" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$http_port/health" >/dev/null || die "the server did not come up"

run=$(( (RANDOM % 900 + 100) * 10000 ))
measure() {  # label run → "requests_per_s unexpected errors" (a subshell: run is passed in)
  local label=$1 run=$2 out=$work/wrk-$1.out
  psql_q -c "CHECKPOINT" >/dev/null
  BENCH_SCENARIO=process-new BENCH_RUN=$run BENCH_WF_HEAD='{"orderId":"' \
    BENCH_WF_TAIL='","amount":12.5,"item":"widget"}' \
    wrk -t 2 -c "$connections" -d "${duration}s" --timeout 10s -s bench/wrk.lua \
    "http://127.0.0.1:$http_port" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  sed -n 's/^BENCH_WRK //p' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
errors = sum(r.get(k, 0) for k in ("connect", "read", "write", "timeout"))
print("%.0f %d %d" % (r["requests"] / (r["duration_us"] / 1e6), r["unexpected"], errors))'
}

read -r ledger_rate ledger_unexpected ledger_errors < <(measure ledger $((run + 1)))
psql_q -c "SELECT orderflow.set_provider('payments', 'http://127.0.0.1:$sim_port', '{\"timeoutMs\": 10000}')" >/dev/null
read -r provider_rate provider_unexpected provider_errors < <(measure provider $((run + 2)))
counts=$(curl -sf "http://127.0.0.1:$sim_port/_sim/counts" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["charges"], c["refunds"])')
charged_workflows=$(psql_q -c "SELECT count(*) FROM orderflow.effects WHERE kind = 'charge' AND state = 'succeeded'")
ratio=$(python3 -c "print('%.2f' % ($provider_rate / $ledger_rate))")
when=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)

lines=(
  "new workflows, ledger:   $ledger_rate/s (unexpected answers $ledger_unexpected, socket errors $ledger_errors)"
  "new workflows, provider: $provider_rate/s, simulator answering after $latency ms (unexpected answers, i.e. not completed: $provider_unexpected; socket errors $provider_errors)"
  "provider/ledger: $ratio; charges counted at the simulator: ${counts% *}, refunds: ${counts#* }; charges recorded: $charged_workflows"
)
for line in "${lines[@]}"; do echo "bench provider: $line"; done

if [ -f "$results_md" ]; then
  python3 - "$results_md" "$when" "$commit" "$duration" "$connections" "$latency" "$cpu" "$cores" "${lines[@]}" <<'PY'
import sys
path, when, commit, duration, connections, latency, cpu, cores, *lines = sys.argv[1:]
start, end = "<!-- provider -->", "<!-- /provider -->"
section = "\n".join([
    start,
    "## Payment provider (bench/provider.sh)",
    "",
    f"{when}, commit {commit}, {cpu}, {cores} cores: POST /api/orders/process with a new orderId "
    f"per request, {connections} connections, {duration} s each, the same server charging through the "
    f"ledger and then through tests/sim/stripe_sim.py answering after {latency} ms. bench/wrk.lua "
    "counts every answer that is not 200 `completed` as unexpected.",
    "",
    *[f"- {line}" for line in lines],
    end,
])
text = open(path).read()
if start in text and end in text:
    text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
fi
