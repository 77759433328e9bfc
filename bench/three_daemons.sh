#!/usr/bin/env bash
# Three `newsriver run` daemons sharing one PostgreSQL database and one feed
# set (examples/three_daemons.rs): requests per feed per interval at the
# farm, the takeover after a SIGKILL of one daemon, and the survivors'
# /feed.atom compared once the feeds stop changing. PostgreSQL is a
# throw-away local server (scripts/pg-test-server.sh, fsync off).
#   bench/three_daemons.sh                          # 2000 feeds, 30 s interval, 4 intervals before and after the kill
#   FEEDS=200 INTERVAL=10 INTERVALS=2 bench/three_daemons.sh
# Knobs: FEEDS, INTERVAL (seconds), INTERVALS (measured before the kill),
# AFTER (after it; default INTERVALS), CHURN (% of feeds publishing an item
# each interval), KILL_CLAIMS (kill daemon 0 once it holds this many
# claims), WORK (keep configs and daemon logs there), TOGETHER (start all
# three daemons at once on the empty database).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin newsriver --example three_daemons >&2
exec scripts/pg-test-server.sh bash -c '
set -euo pipefail
name="three_daemons_$$"
psql "$NEWSRIVER_TEST_DATABASE_URL" -qc "CREATE DATABASE $name" >/dev/null
set -- --feeds "${FEEDS:-2000}" --interval "${INTERVAL:-30}" --intervals "${INTERVALS:-4}" \
    --after "${AFTER:-${INTERVALS:-4}}" --churn "${CHURN:-2}" --kill-claims "${KILL_CLAIMS:-5}" \
    --newsriver target/release/newsriver --database "${NEWSRIVER_TEST_DATABASE_URL%/*}/$name"
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; set -- "$@" --work "$WORK"; fi
if [ -n "${TOGETHER:-}" ]; then set -- "$@" --together 1; fi
echo "machine: $(nproc) cores, $(uname -sr); load before: $(cut -d" " -f1-3 /proc/loadavg)" >&2
target/release/examples/three_daemons "$@"
'
