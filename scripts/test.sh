#!/usr/bin/env bash
# The full test suite: unit tests, integration tests against servers on
# 127.0.0.1:0, and the CLI end to end. Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --locked "$@"
