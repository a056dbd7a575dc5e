#!/usr/bin/env bash
# make test: a throwaway PostgreSQL cluster, the schema, then every suite — pgTAP (pg_prove),
# GoogleTest unit tests and end-to-end tests (ctest); the end-to-end tests again through
# PgBouncer, and a third time through nginx (deploy/nginx/orderflow.conf). The cluster and every
# nginx are stopped on exit, pass or fail, so no server is left running.
set -uo pipefail

# The wrong-client probe straight to the server's own port (issue 9, item 0) fails while
# Pistache answers from its reactor threads; until the worker-pool front is merged it is run and
# reported here but does not decide the result. Set to 1 once it passes.
direct_probe_decides=1

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# /tmp is reachable by the postgres user wherever the project lives; the name is short enough
# for a Unix socket path.
work=$(mktemp -d /tmp/orderflow-test.XXXXXX)
chmod 755 "$work"
cleanup() {
  # The e2e harness starts its nginx instances under $work (ORDERFLOW_TEST_WORK_DIR).
  for dir in "$work"/orderflow-nginx-*/; do
    [ -d "$dir" ] && scripts/nginx.sh stop "$dir" >/dev/null 2>&1
  done
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

export ORDERFLOW_TEST_WORK_DIR=$work
direct_probe=WrongClientProbeTest.DirectToTheServer
# Suites about the HTTP front only (they start their own nginx where they need one): run once.
# BusyPoolTest is here too: it holds two requests on a row lock for seconds with
# LOCK_TIMEOUT_MS=30000, which PgBouncer cannot pass on (its connect_query sets lock_timeout to
# 2 s), so on a slow machine the lock timeout freed the workers mid-test (CI, stop 14).
front_only="WrongClientProbeTest.*:ProxyTest.*:ProxyDownTest.*:BusyPoolTest.*"
# Tests that by nature need the server's own socket: its own framing, pool and half-close (the
# edge suites), or kill -9 or SIGTERM of the server while
# clients wait (nginx answers 502 where they expect no answer or a refused connection).
direct_only="CrashTest.*:FailuresCrashTest.*:GracefulStopTest.*:EdgeTest.*:BusyPoolTest.*:HalfClosedClientTest.*"

# The GoogleTest filter of a pass: the caller's GTEST_FILTER (default: everything) less $1.
filter_without() {
  local wanted=${GTEST_FILTER:-*}
  case "$wanted" in
    *-*) echo "$wanted:$1" ;;
    *) echo "$wanted-$1" ;;
  esac
}

failed=()
echo "== db/schema.sql against the migrations"
scripts/schema.sh check "$url" || failed+=(schema)

echo "== pgTAP (db/tests)"
pg_prove --dbname "$url" --failures db/tests/*.sql || failed+=(pgTAP)

echo "== the payment provider simulator's own tests (tests/sim)"
python3 tests/sim/stripe_sim_selftest.py || failed+=(simulator)

echo "== the webhook receiver's own tests (tests/sim)"
python3 tests/sim/webhook_sim_selftest.py || failed+=(webhook-receiver)

echo "== GoogleTest: unit and end-to-end (ctest)"
# The end-to-end tests run the server as orderflow_app (least privilege) and check the
# database as the owner; they may stop and start the cluster (outage tests).
first_filter=${GTEST_FILTER:-*}
[ "$direct_probe_decides" = 1 ] || first_filter=$(filter_without "$direct_probe")
GTEST_FILTER=$first_filter \
  ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$api_url \
  ORDERFLOW_TEST_PG_DIR=$work/pg ORDERFLOW_TEST_PG_PORT=$port \
  ctest --test-dir "$build" --output-on-failure || failed+=(ctest)

if [ "$direct_probe_decides" != 1 ] && [ -z "${GTEST_FILTER:-}" ]; then
  echo "== the wrong-client probe on the server's own port (reported; not yet a pass criterion)"
  if ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$api_url \
    ORDERFLOW_TEST_PG_DIR=$work/pg ORDERFLOW_TEST_PG_PORT=$port \
    "$build/e2e_tests" --gtest_filter="$direct_probe" >"$work/direct-probe.log" 2>&1; then
    echo "direct probe: no answer reached a wrong client; set direct_probe_decides=1"
  else
    echo "direct probe: KNOWN DEFECT (issue 9, item 0): answers reached the wrong client"
  fi
  grep -A2 "^wrong-client probe" "$work/direct-probe.log"
fi
echo "== wrong-client probe figures of this run"
cat "$work/probe-figures.txt" 2>/dev/null

echo "== end-to-end again, through PgBouncer in transaction pooling mode"
# Session state would break here: a transaction-mode pooler hands every statement to whichever
# server connection is free. Named prepared statements are session state, so DB_PREPARE=0.
bouncer_port=$(free_port $((port + 1)))
bouncer_url=$(scripts/pgbouncer.sh start "$work/bouncer" "$bouncer_port" "$port") || exit 1
echo "(not again: $front_only — they test the HTTP front, not the database path)"
# OutageTest neither: PgBouncer holds queries for up to query_wait_timeout (5 s) while the
# server is down, so a short restart can reach no client at all (CI, 2026-12-02) and the test's
# "clients saw the outage" is then PgBouncer's doing, not ours. It runs directly and via nginx.
echo "(nor OutageTest.*: PgBouncer hides a short outage from the front)"
GTEST_FILTER=$(filter_without "$front_only:OutageTest.*") \
  ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$bouncer_url DB_PREPARE=0 \
  ORDERFLOW_TEST_PG_DIR=$work/pg ORDERFLOW_TEST_PG_PORT=$port \
  ctest --test-dir "$build" --output-on-failure -L e2e || failed+=(ctest-pgbouncer)

echo "== end-to-end a third time, every server behind nginx (deploy/nginx/orderflow.conf)"
# Clients talk to nginx; nginx to the server over long-lived loopback connections.
echo "not through nginx, because they need the server's own socket (kill -9, SIGTERM, its own framing and pool):"
excluded=$("$build/e2e_tests" --gtest_list_tests --gtest_filter="$direct_only" |
  awk '/^[A-Za-z]/ { suite = $1 } /^  / { print "  " suite $1 }')
echo "$excluded"
echo "(and $front_only: they already ran, with their own nginx where they need one)"
rm -f "$work/via-nginx.xml"
GTEST_FILTER=$(filter_without "$direct_only:$front_only") GTEST_OUTPUT="xml:$work/via-nginx.xml" \
  ORDERFLOW_TEST_VIA_PROXY=1 \
  ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$api_url \
  ORDERFLOW_TEST_PG_DIR=$work/pg ORDERFLOW_TEST_PG_PORT=$port \
  ctest --test-dir "$build" --output-on-failure -L e2e || failed+=(ctest-nginx)
if [ -f "$work/via-nginx.xml" ]; then
  ran=$(grep -o -m1 '<testsuites tests="[0-9]*"' "$work/via-nginx.xml" | grep -o '[0-9]*')
  echo "through nginx: ${ran:-0} end-to-end tests ran, $(echo "$excluded" | grep -c .) left out"
else
  echo "through nginx: no test report"
  failed+=(ctest-nginx)
fi

echo "== the operators' console in a browser (tests/browser: Debian chromium, playwright-core)"
# Last: it breaks and cancels orders of its own, which the janitor tests must not find due.
ORDERFLOW_TEST_DATABASE_URL=$url ORDERFLOW_TEST_API_DATABASE_URL=$api_url \
  ORDERFLOW_TEST_ADMIN_DATABASE_URL=$(scripts/pg.sh admin-url "$work/pg" "$port") \
  SCREENSHOT_DIR=$work/screenshots scripts/browser_test.sh "$build" || failed+=(browser)

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "ALL TESTS PASSED"
