#!/usr/bin/env bash
# bench/dbcost.sh <data-dir> <database> <n>: the CPU instructions PostgreSQL spends on one request
# of each kind, counted by valgrind (callgrind) in a single-user backend: deterministic for the
# same build and data, whatever else the machine is doing (wall-clock figures on a shared 2-core
# machine vary by a third between runs). Each statement is its own transaction, as the front's
# are. Prints "dbcost <scenario> <instructions per call>", net of `SELECT 1`.
# The cluster at <data-dir> must be stopped (single-user mode needs it to itself).
set -euo pipefail
dir=${1:?usage: dbcost.sh <data-dir> <database> <n>}
db=${2:?database required}
n=${3:-500}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
tag=c$(date +%s%N | tail -c 9)

as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

instructions() {  # instructions for the statements on stdin, counted by callgrind
  local out; out=$(mktemp -d /tmp/orderflow-dbcost.XXXXXX); chmod 777 "$out"
  as_owner valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    "$PGBIN/postgres" --single -D "$dir" -c synchronous_commit=off -c jit=off "$db" >/dev/null 2>"$out/log"
  grep -m1 -oP 'Collected : \K[0-9]+' "$out/log" || { cat "$out/log" >&2; exit 1; }
  rm -rf "$out"
}

statements() {  # statements <template with @ for a unique id> <count>
  local i
  echo "SELECT 1"
  for i in $(seq 1 "$2"); do echo "${1//@/$tag$i}"; done
}

base=$(statements 'SELECT 1' "$n" | instructions)
per_call() { echo $(( ( $(statements "$1" "$n" | instructions) - base ) / n )); }
echo "dbcost process-new $(per_call "SELECT orderflow.process_order_request('@', '{\"orderId\":\"@\",\"amount\":12.5,\"item\":\"widget\"}'::jsonb)::text")"
echo "dbcost orders-new $(per_call "SELECT status, body::text, replayed FROM orderflow.create_order_idempotent('@', '{\"item\":\"widget\",\"quantity\":1}'::jsonb)")"
