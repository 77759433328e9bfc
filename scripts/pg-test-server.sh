#!/usr/bin/env bash
# Runs a command beside a throw-away PostgreSQL server: a fresh data folder
# under a temporary folder, listening on 127.0.0.1 on a free port and on a
# Unix socket in that folder, with durability off (fsync, synchronous_commit,
# full_page_writes: a test server loses nothing worth keeping) and TLS on,
# with a self-signed certificate for 127.0.0.1. The command
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
# TLS with a self-signed certificate for 127.0.0.1, so the tests can connect
# with each sslmode (the client is the only thing that checks it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -keyout "$folder/server.key" -out "$folder/server.crt" >"$folder/openssl.log" 2>&1 \
    || { cat "$folder/openssl.log" >&2; echo "pg-test-server: cannot make a certificate" >&2; exit 1; }
chmod 600 "$folder/server.key"
[ "$(id -u)" -eq 0 ] && chown postgres: "$folder/server.key" "$folder/server.crt"
if ! as_server "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 60 \
    -o "-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c ssl=on -c ssl_cert_file=$folder/server.crt -c ssl_key_file=$folder/server.key" \
    start >/dev/null; then
    cat "$folder/server.log" >&2 || true
    echo "pg-test-server: the server did not start" >&2
    exit 1
fi
printf 'pg-test-server: PostgreSQL %s on 127.0.0.1:%s, up in %.1f s\n' \
    "$("$bin/postgres" --version | awk '{print $3}')" "$port" "$(awk "BEGIN { print $(date +%s.%N) - $started }")" >&2

export NEWSRIVER_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
export NEWSRIVER_TEST_PG_BIN="$bin"
# The server's certificate (self-signed), for tests that check it.
export NEWSRIVER_TEST_PG_CERT="$folder/server.crt"
set +e
"$@"
status=$?
set -e
exit "$status"
