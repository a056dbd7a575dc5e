#!/usr/bin/env bash
# make test-citus: the suites of make test against a Citus cluster — a coordinator and two
# workers on loopback (scripts/citus.sh), the schema distributed by `orderflow --migrate`
# (db/citus/) — every client talking to the coordinator:
#   pgTAP: db/tests as they are, each assertion evaluated on the coordinator
#     (tests/citus/tap_on_coordinator.py says why and how);
#   end-to-end and chaos (ctest -L e2e): the server on the coordinator; the outage and crash
#     tests stop and kill the coordinator's PostgreSQL.
# Needs Citus installed for PostgreSQL 15 (scripts/citus.sh check says how to get it). Nothing
# is left running afterwards.
set -uo pipefail

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/citus.sh check || exit 1

work=$(mktemp -d /tmp/orderflow-citus.XXXXXX)
chmod 755 "$work"
cleanup() {
  for dir in "$work"/orderflow-nginx-*/; do
    [ -d "$dir" ] && scripts/nginx.sh stop "$dir" >/dev/null 2>&1
  done
  scripts/citus.sh kill "$work/citus" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

. scripts/lib.sh
# Three free ports in a row: the coordinator's and the two workers'.
port=$(free_port 26433)
while [ "$(free_port $((port + 1)))" != $((port + 1)) ] || [ "$(free_port $((port + 2)))" != $((port + 2)) ]; do
  port=$(free_port $((port + 3)))
done
url=$(scripts/citus.sh start "$work/citus" "$port") || exit 1
api_url=$(scripts/pg.sh api-url "$work/citus/node0" "$port")
echo "citus cluster: coordinator $url, workers on ports $((port + 1)) and $((port + 2))"
psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE EXTENSION IF NOT EXISTS pgtap" || exit 1
DATABASE_URL=$url "$build/orderflow" --migrate || exit 1
psql -qAtX "$url" -c "SELECT 'distributed: ' || count(*) FILTER (WHERE partmethod = 'h') || ' tables by hash, '
                             || count(*) FILTER (WHERE partmethod = 'n') || ' reference tables'
                        FROM pg_dist_partition"

failed=()
echo "== pgTAP (db/tests) through the coordinator"
mkdir -p "$work/tap"
for f in db/tests/*.sql; do
  python3 tests/citus/tap_on_coordinator.py "$f" >"$work/tap/$(basename "$f")" || failed+=("tap-rewrite:$f")
done
(cd "$work/tap" && pg_prove --dbname "$url" --failures ./*.sql) || failed+=(pgTAP)

echo "== end-to-end and chaos (ctest -L e2e) through the coordinator"
# As in make test's PgBouncer and nginx passes, the suites about the HTTP front alone run once,
# in make test: they test the front's framing and pool, not the database path.
front_only="WrongClientProbeTest.*:ProxyTest.*:ProxyDownTest.*:BusyPoolTest.*"
echo "(not here: $front_only — make test runs them; they test the HTTP front, not the database path)"
export ORDERFLOW_TEST_WORK_DIR=$work
GTEST_FILTER="-$front_only" ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$api_url \
  ORDERFLOW_TEST_PG_DIR=$work/citus/node0 ORDERFLOW_TEST_PG_PORT=$port \
  ctest --test-dir "$build" --output-on-failure -L e2e || failed+=(ctest-e2e)

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED on Citus: ${failed[*]}"
  exit 1
fi
echo "ALL CITUS TESTS PASSED"
