#!/usr/bin/env bash
# Runs the Python client's checks from a checkout: installs the package (its
# stubs generated from proto/) with its test extras into a venv of its own,
# type-checks it with mypy --strict, and runs the pytest suite against the
# binaries in $PRISM_BIN_DIR (default: $CARGO_TARGET_DIR/debug, else
# target/debug; build them first with `cargo build --workspace --bins`).
#
# The suites start redis-server, nats-server and the OpenID provider: source
# scripts/tools.sh first (scripts/test.sh does). Arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
tools_dir="${PRISM_TOOLS_DIR:-$target/tools}"
venv="$tools_dir/pyclient-venv"
export PRISM_BIN_DIR="${PRISM_BIN_DIR:-$target/debug}"

if [ ! -x "$venv/bin/pip" ]; then
  echo "creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: source scripts/tools.sh, which installs python3-venv" >&2
    exit 1
  }
fi
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
# The build needs these in the venv (no build isolation: nothing is fetched
# again on every run, and the versions are the ones pinned here).
"${pip[@]}" 'setuptools>=77' 'grpcio-tools>=1.85.1,<1.86' 'protobuf>=7.35.1,<8'
"${pip[@]}" --no-build-isolation "$here[test]"
# Always rebuild the package itself: the checkout's proto/ or code may have changed.
"${pip[@]}" --no-build-isolation --force-reinstall --no-deps "$here"

echo "mypy --strict prism_client"
# From outside the source tree, so the installed package (with its stubs) is checked.
(cd "$tools_dir" && "$venv/bin/mypy" --config-file "$here/pyproject.toml" -p prism_client)

echo "pytest clients/python (binaries from $PRISM_BIN_DIR)"
cd "$here"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
