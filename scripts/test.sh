#!/usr/bin/env bash
# make test: a throwaway PostgreSQL cluster, the schema, then every suite — pgTAP (pg_prove),
# GoogleTest unit tests and end-to-end tests (ctest). The cluster is removed on exit, pass or
# fail, so no server is left running.
set -uo pipefail

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# /tmp is reachable by the postgres user wherever the project lives; the name is short enough
# for a Unix socket path.
work=$(mktemp -d /tmp/orderflow-test.XXXXXX)
chmod 755 "$work"
cleanup() {
  scripts/pgbouncer.sh stop "$work/bouncer" >/dev/null 2>&1
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || scripts/pg.sh kill "$work/pg" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

. scripts/lib.sh
port=$(free_port 25433)
url=$(scripts/pg.sh start "$work/pg" "$port") || exit 1
api_url=$(scripts/pg.sh api-url "$work/pg" "$port")
echo "test cluster: $url (server role: $api_url)"
psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE EXTENSION IF NOT EXISTS pgtap" || exit 1
DATABASE_URL=$url "$build/orderflow" --migrate || exit 1

failed=()
echo "== db/schema.sql against the migrations"
scripts/schema.sh check "$url" || failed+=(schema)

echo "== pgTAP (db/tests)"
pg_prove --dbname "$url" --failures db/tests/*.sql || failed+=(pgTAP)

echo "== GoogleTest: unit and end-to-end (ctest)"
# The end-to-end tests run the server as orderflow_app (least privilege) and check the
# database as the owner; they may stop and start the cluster (outage tests).
ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$api_url \
  ORDERFLOW_TEST_PG_DIR=$work/pg ORDERFLOW_TEST_PG_PORT=$port \
  ctest --test-dir "$build" --output-on-failure || failed+=(ctest)

echo "== end-to-end again, through PgBouncer in transaction pooling mode"
# Session state would break here: a transaction-mode pooler hands every statement to whichever
# server connection is free. Named prepared statements are session state, so DB_PREPARE=0.
bouncer_port=$(free_port $((port + 1)))
bouncer_url=$(scripts/pgbouncer.sh start "$work/bouncer" "$bouncer_port" "$port") || exit 1
ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$bouncer_url DB_PREPARE=0 \
  ORDERFLOW_TEST_PG_DIR=$work/pg ORDERFLOW_TEST_PG_PORT=$port \
  ctest --test-dir "$build" --output-on-failure -L e2e || failed+=(ctest-pgbouncer)

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "ALL TESTS PASSED"
