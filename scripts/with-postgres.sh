#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL: initdb in a temporary folder, a free port on
# 127.0.0.1 (its unix socket in the same folder), trust authentication for the role `cairn`,
# stopped and deleted when the command ends (however it ends). The command gets its URL in
# CAIRN_TEST_POSTGRES_URL (e.g. postgresql://cairn@127.0.0.1:40123/postgres).
#
#   scripts/with-postgres.sh cargo test -p cairn-store-postgres
#
# PostgreSQL's binaries are looked for on PATH and in /usr/lib/postgresql/*/bin; where there are
# none, root installs Debian's `postgresql` package (apt-get). initdb refuses to run as root, so
# as root the server runs as the `postgres` user (created when missing). Where no PostgreSQL can
# be had, the command runs without the variable and the tests that need it say that they skip.
# PG_FSYNC=off turns fsync off (faster tests; never for figures).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

find_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

bin=$(find_bin || true)
if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "with-postgres: no PostgreSQL found; installing Debian's postgresql package" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || echo "with-postgres: apt-get could not install postgresql" >&2
  bin=$(find_bin || true)
fi
if [ -z "$bin" ]; then
  echo "with-postgres: no PostgreSQL on this machine; running without one (its tests skip)" >&2
  exec "$@"
fi

run_as=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  if ! id "$owner" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
  fi
  run_as=(runuser -u "$owner" --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-pg.XXXXXX")
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown "$owner" "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

"${run_as[@]}" "$bin/initdb" -D "$dir/data" -U cairn --auth=trust -E UTF8 --locale=C.UTF-8 \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
"${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} -c max_connections=200" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export CAIRN_TEST_POSTGRES_URL="postgresql://cairn@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') at $CAIRN_TEST_POSTGRES_URL (data in $dir)" >&2
status=0
"$@" || status=$?
exit "$status"
