#!/usr/bin/env bash
# Runs a command beside a throw-away PostgreSQL server: a fresh data folder
# under a temporary folder, listening on 127.0.0.1 on a free port and on a
# Unix socket in that folder, with durability off (fsync, synchronous_commit,
# full_page_writes: a test server loses nothing worth keeping). The command
# gets the server's admin URL in NEWSRIVER_TEST_DATABASE_URL; tests create
# databases of their own from it. The server is stopped and its folder
# removed when the command ends, however it ends; the command's exit status
# is this script's.
#
#   scripts/pg-test-server.sh COMMAND [ARGS...]
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "pg-test-server: PostgreSQL is not installed (run scripts/install-test-tools.sh)" >&2
    exit 1
fi

# PostgreSQL refuses to run as root: run it as the package's user then.
as_server() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

folder=$(mktemp -d /tmp/newsriver-pg.XXXXXX)
chmod 755 "$folder"
[ "$(id -u)" -eq 0 ] && chown postgres: "$folder"
stop() {
    as_server "$bin/pg_ctl" -D "$folder/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$folder"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
started=$(date +%s.%N)
as_server "$bin/initdb" -D "$folder/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$folder/initdb.log" 2>&1 \
    || { cat "$folder/initdb.log" >&2; echo "pg-test-server: initdb failed" >&2; exit 1; }
if ! as_server "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 \
    -o "-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null; then
    cat "$folder/server.log" >&2 || true
    echo "pg-test-server: the server did not start" >&2
    exit 1
fi
printf 'pg-test-server: PostgreSQL %s on 127.0.0.1:%s, up in %.1f s\n' \
    "$("$bin/postgres" --version | awk '{print $3}')" "$port" "$(awk "BEGIN { print $(date +%s.%N) - $started }")" >&2

export NEWSRIVER_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
export NEWSRIVER_TEST_PG_BIN="$bin"
set +e
"$@"
status=$?
set -e
exit "$status"
