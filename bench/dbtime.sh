#!/usr/bin/env bash
# bench/dbtime.sh <owner-url> [seconds]: the database time of one request, the budget of
# issue 8. pgbench at ONE client runs the exact statement the front sends (bench/pgbench/*.sql),
# with synchronous_commit = off for that session so the WAL flush is not measured, and the
# latency of `SELECT 1` (the round trip and pgbench's own cost) is subtracted. Prints one line
# per scenario: "dbtime <scenario> <µs>". A measurement, not a test.
set -euo pipefail
url=${1:?usage: dbtime.sh <owner-url> [seconds]}
seconds=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
run=$(( $(date +%s) % 100000 + 200000 ))
wf_head='{"orderId":"dbtime-'
wf_tail='","amount":12.5,"item":"widget"}'

latency_us() {  # pgbench's average latency in µs for one script file
  PGOPTIONS='-c synchronous_commit=off' pgbench -n -c 1 -j 1 -T "$seconds" -M prepared \
    -D run="$run" -D i=0 -D order_body='{"item":"widget","quantity":1}' \
    -D wf_head="$wf_head" -D wf_tail="$wf_tail" -f "$1" "$url" 2>/dev/null |
    awk '/latency average/ {printf "%d\n", $4 * 1000}'
}

select1=$(mktemp); echo 'SELECT 1;' >"$select1"
base=$(latency_us "$select1"); rm -f "$select1"
echo "dbtime select1 ${base}"
for scenario in process-new orders-new; do
  run=$((run + 1))
  total=$(latency_us "$root/bench/pgbench/$scenario.sql")
  echo "dbtime $scenario $((total - base))"
done
