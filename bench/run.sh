#!/usr/bin/env bash
# Builds newsriver and the harness in release mode, then measures newsriver
# against this machine's ceilings and writes BENCHMARKS.md.
#   bench/run.sh                         # defaults: 2000 feeds × 50 entries, growth 100,1000,10000
#   bench/run.sh --feeds 500 --entries 20 --growth 100,1000
# Options: see `bench/run.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin newsriver --example bench
exec target/release/examples/bench --newsriver target/release/newsriver "$@"
