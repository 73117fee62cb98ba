#!/usr/bin/env bash
# THE test command (`npm test`): installs the real clients, installs npm deps when missing or
# stale, builds, typechecks, runs every vitest test (unit, integration, interop) and ends with
# one line "N passed, N failed[, N skipped]". Non-zero exit on any failure, skip, or no tests.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

step() { printf '\n== %s\n' "$*"; }
die() {
  printf 'test.sh: %s\n' "$*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

step "real clients"
bash scripts/install-clients.sh || die "installing the interop clients failed"

step "npm dependencies"
if reason="$(node scripts/deps-stale.mjs "$ROOT")"; then
  echo "running npm ci: $reason"
  npm ci --no-audit --no-fund || die "npm ci failed"
else
  echo "node_modules matches package-lock.json"
fi

step "build (tsc, then one bundled file for bin/tt.js)"
npm run --silent build || die "build failed"

step "typecheck (tsc -p tsconfig.json --noEmit)"
npx tsc -p tsconfig.json --noEmit || die "typecheck failed"

step "tests (vitest)"
REPORT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tt-test-report.XXXXXX")"
trap 'rm -rf "$REPORT_DIR"' EXIT
REPORT="$REPORT_DIR/vitest.json"
dirs=()
for d in test/unit test/integration test/interop test/fuzz; do
  [ -d "$d" ] && dirs+=("$d")
done
[ "${#dirs[@]}" -gt 0 ] || die "no test directories found"
npx vitest run "${dirs[@]}" --reporter=default --reporter=json --outputFile.json="$REPORT" </dev/null
vitest_rc=$?

echo
node scripts/test-summary.mjs "$REPORT"
summary_rc=$?
if [ "$vitest_rc" -ne 0 ] && [ "$summary_rc" -eq 0 ]; then
  # e.g. an unhandled error outside any test: the counts look fine but the run did not pass
  echo "test.sh: vitest exited with $vitest_rc" >&2
  exit "$vitest_rc"
fi
exit "$summary_rc"
