#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server, for the tests that run on both databases.
# Usage: bash scripts/postgres_for_tests.sh COMMAND [ARGUMENTS...]
#
# Starts a fresh cluster in a temporary folder, listening on 127.0.0.1 on a free port only,
# exports CATSEG_TEST_POSTGRES_URL (its database catseg_test), runs COMMAND, then stops the
# server and deletes the folder, whatever COMMAND's outcome; exits with COMMAND's status.
# Installs the Debian package `postgresql` when it is missing and we are root with apt-get.
# Without PostgreSQL, COMMAND runs anyway and the PostgreSQL tests are skipped, unless
# CATSEG_REQUIRE_POSTGRES=1 (CI), which makes that an error.
# A CATSEG_TEST_POSTGRES_URL already set (your own server) is used as it is.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: bash scripts/postgres_for_tests.sh COMMAND [ARGUMENTS...]" >&2
  exit 2
fi
if [ -n "${CATSEG_TEST_POSTGRES_URL:-}" ]; then
  exec "$@"
fi

# no_postgres REASON COMMAND...: run COMMAND without PostgreSQL (an error in CI).
no_postgres() {
  local reason=$1
  shift
  if [ "${CATSEG_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "error: $reason (CATSEG_REQUIRE_POSTGRES=1)" >&2
    exit 1
  fi
  echo "warning: $reason; the PostgreSQL tests will be skipped" >&2
  local status=0
  "$@" || status=$?
  exit "$status"
}

postgres_bin_directory() {
  # Debian keeps the server programs out of PATH, one folder per major version: take the newest.
  local newest
  newest=$( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true) | sort -V | tail -n 1)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
    echo "$newest"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

bin_directory=$(postgres_bin_directory)
if [ -z "$bin_directory" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing PostgreSQL (apt-get install postgresql) for the tests..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || echo "warning: apt-get could not install postgresql" >&2
  bin_directory=$(postgres_bin_directory)
fi
[ -n "$bin_directory" ] || no_postgres "PostgreSQL's server programs (initdb, pg_ctl) were not found" "$@"

# initdb refuses to run as root: the server runs as an ordinary user, who owns its folder.
as_server_user=()
if [ "$(id -u)" = 0 ]; then
  server_user=postgres
  id "$server_user" >/dev/null 2>&1 || server_user=nobody
  as_server_user=(runuser -u "$server_user" --)
fi

folder=$(mktemp -d "${TMPDIR:-/tmp}/catseg-postgres.XXXXXX")
chmod 755 "$folder"
[ ${#as_server_user[@]} -eq 0 ] || chown "$server_user" "$folder"

stop_server() {
  "${as_server_user[@]}" "$bin_directory/pg_ctl" -D "$folder/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$folder"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

"${as_server_user[@]}" "$bin_directory/initdb" -D "$folder/data" -U catseg --auth=trust --encoding=UTF8 \
  --no-locale --no-sync >"$folder/initdb.log" 2>&1 \
  || { cat "$folder/initdb.log" >&2; no_postgres "initdb failed" "$@"; }

# A free port now; another program could take it before the server does, hence the retries.
started=""
for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Durability is of no use to a throwaway server: without fsync the tests run faster.
  if "${as_server_user[@]}" "$bin_directory/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 \
      -o "-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null; then
    started=yes
    break
  fi
done
if [ -z "$started" ]; then
  tail -n 20 "$folder/server.log" >&2 || true
  no_postgres "the PostgreSQL server did not start" "$@"
fi
"${as_server_user[@]}" "$bin_directory/createdb" -h 127.0.0.1 -p "$port" -U catseg catseg_test

export CATSEG_TEST_POSTGRES_URL="postgresql+psycopg://catseg@127.0.0.1:$port/catseg_test"
echo "PostgreSQL $("$bin_directory/pg_ctl" --version | awk '{print $3}') for the tests: $CATSEG_TEST_POSTGRES_URL" >&2
status=0
"$@" || status=$?
exit "$status"
