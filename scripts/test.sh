#!/usr/bin/env bash
# Runs every test from a fresh clone: installs the test tools, builds every
# binary (the end-to-end tests start them), then runs all test suites.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/tools.sh

cargo build --workspace --bins --examples
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
