#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every test.
#   Rust: formatting, clippy, unit and integration tests (real sockets, real SQLite, real index).
#   Browser: the widget in headless Debian Chromium, driven by Playwright (playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null; then
  log "installing Node.js"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

log "cargo build"
cargo build --quiet

log "knowledge-base check (sample KB: validation + answer tests)"
./target/debug/supportbot kb check --min-accuracy 0.5

log "flows check (sample flows: validation + transcript tests)"
./target/debug/supportbot flows check | grep -v '^warning: .* has no .* translation$' || true
./target/debug/supportbot flows check > /dev/null

log "cargo test (unit + integration)"
cargo test --quiet -- --test-threads 2

log "browser tests (headless chromium)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && SUPPORTBOT_BIN="$PWD/../../target/debug/supportbot" npm test)
