#!/usr/bin/env bash
# make sanitize: every suite of make test (scripts/test.sh) with the AddressSanitizer and
# UndefinedBehaviorSanitizer build in $1. The sanitizers of every process — the test binaries
# and each server the end-to-end tests start — write their reports to files in one directory;
# they are printed at the end, and any report fails the run even when every test passed (a
# server's leak report at exit, for instance, reaches no test).
set -uo pipefail

build=${1:-build-asan}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

reports=$(mktemp -d /tmp/orderflow-sanitize.XXXXXX)
export ASAN_OPTIONS="log_path=$reports/asan:halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"

scripts/test.sh "$build"
tests=$?

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
  echo "== sanitizer reports ($reports)"
  for report in $found; do
    echo "--- $report"
    cat "$report"
  done
  echo "SANITIZERS FOUND $(echo "$found" | wc -l) REPORT(S)"
  exit 1
fi
rm -rf "$reports"
if [ "$tests" -ne 0 ]; then
  echo "SANITIZE: tests failed (no sanitizer report)"
  exit "$tests"
fi
echo "SANITIZE: ALL TESTS PASSED, NO SANITIZER REPORTS"
