#!/usr/bin/env bash
# Set up (venv, packages, a Chromium for the browser tests) and run every test, the storage
# tests on SQLite and on a throwaway PostgreSQL server (scripts/postgres_for_tests.sh).
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .

# Browser tests use the system Chromium; Playwright's own download is the fallback only
# where no system Chromium can be had.
if [ -z "${CATSEG_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: apt-get could not install chromium" >&2
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    .venv/bin/python -m playwright install chromium || echo "warning: no Chromium; browser tests will be skipped" >&2
  fi
fi

# Two workers (pytest-xdist): CI has two cores; pass -n 0 to run in one process.
exec bash scripts/postgres_for_tests.sh .venv/bin/python -m pytest -ra -n 2 "$@"
