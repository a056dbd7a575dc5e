#!/usr/bin/env bash
# The console in a real browser: Debian's chromium driven by playwright-core (tests/browser).
#
#   scripts/browser_test.sh [build_dir]
#
# Against the database named by ORDERFLOW_TEST_DATABASE_URL (the schema owner),
# ORDERFLOW_TEST_API_DATABASE_URL (orderflow_app) and ORDERFLOW_TEST_ADMIN_DATABASE_URL
# (orderflow_console, a member of orderflow_operator); without them, on a throwaway cluster of
# its own that is gone afterwards. Screenshots go to docs/console/ (SCREENSHOT_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

"$root/scripts/deps.sh"
command -v npm >/dev/null || { echo "browser_test.sh: npm is missing (Node.js 18 or newer)" >&2; exit 1; }
[ -x "$build/orderflow" ] || { echo "browser_test.sh: build $build/orderflow first" >&2; exit 1; }

# playwright-core alone, as locked; it downloads no browser (the test uses /usr/bin/chromium).
(cd "$root/tests/browser" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)

if [ -z "${ORDERFLOW_TEST_DATABASE_URL:-}" ]; then
  dir=$("$root/scripts/pg.sh" dir browser)
  port=${BROWSER_PG_PORT:-25460}
  "$root/scripts/pg.sh" kill "$dir" || true
  rm -rf "$dir"
  trap '"$root/scripts/pg.sh" kill "$dir"; rm -rf "$dir"' EXIT
  ORDERFLOW_TEST_DATABASE_URL=$("$root/scripts/pg.sh" start "$dir" "$port")
  ORDERFLOW_TEST_API_DATABASE_URL=$("$root/scripts/pg.sh" api-url "$dir" "$port")
  ORDERFLOW_TEST_ADMIN_DATABASE_URL=$("$root/scripts/pg.sh" admin-url "$dir" "$port")
  # The schema first, so that any extra SQL (BROWSER_TEST_SQL) finds it.
  DATABASE_URL=$ORDERFLOW_TEST_DATABASE_URL "$build/orderflow" --migrate >/dev/null
fi
: "${ORDERFLOW_TEST_API_DATABASE_URL:?set it with ORDERFLOW_TEST_DATABASE_URL}"
: "${ORDERFLOW_TEST_ADMIN_DATABASE_URL:?set it with ORDERFLOW_TEST_DATABASE_URL}"
if [ -n "${BROWSER_TEST_SQL:-}" ]; then
  psql -X -q -v ON_ERROR_STOP=1 "$ORDERFLOW_TEST_DATABASE_URL" -f "$BROWSER_TEST_SQL"
fi
export ORDERFLOW_TEST_DATABASE_URL ORDERFLOW_TEST_API_DATABASE_URL ORDERFLOW_TEST_ADMIN_DATABASE_URL
export ORDERFLOW_SERVER="$build/orderflow"
export ORDERFLOW_BROWSER_LOG="$build/browser-server.log"  # the server's log, for a failure
cd "$root/tests/browser"
node --test --test-concurrency=1 console.test.mjs
