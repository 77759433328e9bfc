#!/usr/bin/env bash
# The full test suite: unit tests, integration tests against servers on
# 127.0.0.1:0, the CLI end to end, and the interop tests with real clients
# (newsboat, Chromium, Python feedparser), which are installed first if missing,
# all beside a throw-away PostgreSQL server (scripts/pg-test-server.sh) that
# the PostgreSQL tests create their databases in.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-tools.sh
exec ./scripts/pg-test-server.sh cargo test --locked "$@"
