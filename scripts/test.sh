#!/usr/bin/env bash
# The full test suite: unit tests, integration tests against servers on
# 127.0.0.1:0, the CLI end to end, and the interop tests with real clients
# (newsboat, Chromium, Python feedparser), which are installed first if missing,
# all beside a throw-away PostgreSQL server (scripts/pg-test-server.sh).
#
# The integration tests run twice from the same sources: on SQLite, then on
# PostgreSQL (NEWSRIVER_TEST_BACKEND=postgres). Arguments go to both runs
# (`./scripts/test.sh --test pipeline` runs that file on each backend).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-tools.sh
exec ./scripts/pg-test-server.sh bash -c '
    set -euo pipefail
    echo "== tests on SQLite" >&2
    cargo test --locked "$@"
    echo "== the integration tests again, on PostgreSQL" >&2
    if [ "$#" -eq 0 ]; then
        NEWSRIVER_TEST_BACKEND=postgres cargo test --locked --test "*"
    else
        NEWSRIVER_TEST_BACKEND=postgres cargo test --locked "$@"
    fi
' test.sh "$@"
