#!/usr/bin/env bash
# Runs every test from a fresh clone: installs the test tools, builds every
# binary (the end-to-end tests start them), then runs all test suites: the
# Rust workspace's, then the Python client's (clients/python/run-tests.sh:
# mypy --strict and pytest against the binaries just built). Arguments go to
# the Rust test runner; either suite failing fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/tools.sh

cargo build --workspace --bins --examples
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || status=$?
else
  cargo test --workspace --no-fail-fast "$@" || status=$?
fi

# nextest runs no doctests: the client crate's documented examples run here.
cargo test --doc -p prism-client || status=$?

clients/python/run-tests.sh || status=$?
exit "$status"
