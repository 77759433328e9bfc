#!/usr/bin/env bash
# The scheduler's database work for many feeds on PostgreSQL, simulated (no
# network, a simulated clock): see examples/claim_simulation.rs. Builds the
# example in release mode, starts a throw-away PostgreSQL server
# (scripts/pg-test-server.sh: fsync, synchronous_commit and full_page_writes
# off), creates a database and runs the simulation in it.
#   bench/claim_simulation.sh                                  # 1,000,000 feeds, 4 daemons
#   FEEDS=100000 HOSTS=5000 DAEMONS=2 SIM_MINUTES=5 bench/claim_simulation.sh
# Knobs (environment): FEEDS, HOSTS, DAEMONS, SIM_MINUTES (at the final
# size), and SIZES, WARM_MINUTES, ZIPF_S, CONCURRENCY, STEP_MS, INTERVALS,
# HOST_CONCURRENCY, HOST_GAP_MS, FETCH_MS, SYNC_FEEDS, NEXT_DUE_EVERY,
# TRACE_STEPS, SYNC_NOOP, OUT: see the example.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --example claim_simulation >&2
exec scripts/pg-test-server.sh bash -c '
set -euo pipefail
psql -q "$NEWSRIVER_TEST_DATABASE_URL" -c "CREATE DATABASE sim" >/dev/null
export DATABASE_URL="${NEWSRIVER_TEST_DATABASE_URL%/*}/sim"
exec target/release/examples/claim_simulation
'
