#!/usr/bin/env bash
# P1 (cold ingest, `poll --once` into an empty database) and P2 (the warm
# re-poll right after it) on PostgreSQL beside SQLite: the same farm, the
# same binary, alternating, in one run; prints the ratios. PostgreSQL is a
# throw-away local server (scripts/pg-test-server.sh, fsync off).
#   bench/pg_vs_sqlite.sh                   # 500 feeds × 50 entries, 3 runs each
#   FEEDS=2000 ENTRIES=50 RUNS=2 bench/pg_vs_sqlite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin newsriver --example bench >&2
exec scripts/pg-test-server.sh bash -c '
set -euo pipefail
FEEDS=${FEEDS:-500}; ENTRIES=${ENTRIES:-50}; RUNS=${RUNS:-3}
work=$(mktemp -d); trap "kill \$farm 2>/dev/null || true; rm -rf $work" EXIT
target/release/examples/bench --serve-only --feeds "$FEEDS" --entries "$ENTRIES" --work "$work" >"$work/farm.out" 2>&1 &
farm=$!
for _ in $(seq 1 600); do grep -q "config:" "$work/farm.out" 2>/dev/null && break; sleep 0.1; done
config=$(sed -n "s/.*config: //p" "$work/farm.out")
folder=$(dirname "$config")
time_poll() { # config → seconds
    local start end
    start=$(date +%s.%N)
    target/release/newsriver poll --once --config "$1" >/dev/null 2>&1
    end=$(date +%s.%N)
    awk "BEGIN { printf \"%.3f\", $end - $start }"
}
echo "farm: $FEEDS feeds x $ENTRIES entries; $RUNS runs per backend, alternating"
printf "%-10s %-4s %10s %10s\n" backend run "P1 cold s" "P2 warm s"
for run in $(seq 1 "$RUNS"); do
    for backend in sqlite postgres; do
        if [ "$backend" = sqlite ]; then
            rm -f "$folder"/river.db*
            cfg="$config"
        else
            name="bench_${run}_$$"
            psql "$NEWSRIVER_TEST_DATABASE_URL" -qc "CREATE DATABASE $name" >/dev/null
            url="${NEWSRIVER_TEST_DATABASE_URL%/*}/$name"
            cfg="$folder/pg.toml"
            sed "s|^path = \"river.db\"|url = \"$url\"|" "$config" >"$cfg"
        fi
        cold=$(time_poll "$cfg"); warm=$(time_poll "$cfg")
        printf "%-10s %-4s %10s %10s\n" "$backend" "$run" "$cold" "$warm"
        echo "$backend $cold $warm" >>"$work/times"
    done
done
awk "
{ cold[\$1] += \$2; warm[\$1] += \$3; n[\$1]++ }
END {
  printf \"mean: sqlite P1 %.3f s, P2 %.3f s; postgres P1 %.3f s, P2 %.3f s\\n\", cold[\"sqlite\"]/n[\"sqlite\"], warm[\"sqlite\"]/n[\"sqlite\"], cold[\"postgres\"]/n[\"postgres\"], warm[\"postgres\"]/n[\"postgres\"]
  printf \"ratio postgres/sqlite: P1 %.2fx, P2 %.2fx\\n\", (cold[\"postgres\"]/n[\"postgres\"])/(cold[\"sqlite\"]/n[\"sqlite\"]), (warm[\"postgres\"]/n[\"postgres\"])/(warm[\"sqlite\"]/n[\"sqlite\"])
}" "$work/times"
'
