#!/usr/bin/env bash
# Installs the real feed clients the interop tests (tests/interop.rs) run:
# newsboat, Chromium and Python feedparser; and PostgreSQL, whose throw-away
# server the PostgreSQL tests run against (scripts/pg-test-server.sh). Idempotent: only what is missing is
# installed, so on a prepared machine this does nothing. Needs apt (Debian or
# Ubuntu) and root or sudo when something is missing.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v newsboat >/dev/null 2>&1 || missing+=(newsboat)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
# Debian's server binaries are not on PATH; the package has unaccent (contrib).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# The test server's self-signed certificate (TLS tests).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! python3 -c 'import feedparser' >/dev/null 2>&1; then
    echo "== installing feedparser"
    # pip first (it installs for the python3 on PATH, pyenv included); a
    # Debian system Python refuses plain pip, so fall back to its package.
    python3 -m pip install --quiet feedparser \
        || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-feedparser
    python3 -c 'import feedparser'
fi
