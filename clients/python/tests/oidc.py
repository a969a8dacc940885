"""A real OpenID provider for the tests: the repository's
`tests/oidc/provider.mjs` (the `oidc-provider` package under Node.js), on a
free port, started the way the Rust harness starts it
(tests/harness/src/oidc.rs). It issues JWT access tokens (audience `prism`,
claims `sub`, `scope`, `groups`) by the client-credentials grant and the
device-code flow; `approve` posts to its test-only `/test/device` endpoint,
which approves a pending device login as its confirmation page would.

`NODE` names the node binary (else `node` on PATH); `PRISM_OIDC_MODULES` the
node_modules folder holding `oidc-provider` (`scripts/tools.sh` installs it
and exports it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy import REPO, ServerExited, eventually, on_a_free_port

SCRIPT = REPO / "tests" / "oidc" / "provider.mjs"
#: The public client of device logins (as `prism-console login` uses it).
CLI_CLIENT = "prism-cli"
#: Confidential clients: (id, secret), and the groups of their tokens.
WRITER = ("orders-writer", "orders-writer-secret")
READER = ("orders-reader", "orders-reader-secret")
#: Device-login users.
DEV_ACCOUNT = "dev@local.prism"
VIEWER_ACCOUNT = "viewer@local.prism"


AUTH_CONFIG = """auth:
  issuers:
    - issuer: {issuer}
      audiences: [prism]
  leeway_seconds: 0
namespaces:
  - name: orders
    pattern: keyvalue
    access:
      read: ["group:orders-readers", "group:orders-writers", "group:prism-admins"]
      write: ["group:orders-writers", "group:prism-admins"]
  - name: billing
    pattern: keyvalue
    access:
      read: ["group:billing-writers"]
      write: ["group:billing-writers"]
"""


def auth_config(oidc: OidcProvider) -> str:
    """A proxy config with auth on, trusting `oidc`: `orders` for the
    orders groups and `prism-admins` (the device-login user), `billing` for
    a group nobody here is in."""
    return AUTH_CONFIG.format(issuer=oidc.issuer)


def _config(access_token_ttl: int) -> dict[str, Any]:
    return {
        "ttl": {"access_token": access_token_ttl, "refresh_token": 86400},
        "clients": [
            {"client_id": WRITER[0], "client_secret": WRITER[1], "groups": ["orders-writers"], "scope": ""},
            {"client_id": READER[0], "client_secret": READER[1], "groups": ["orders-readers"], "scope": ""},
            {"client_id": CLI_CLIENT, "public": True},
        ],
        "accounts": [
            {"id": DEV_ACCOUNT, "email": DEV_ACCOUNT, "groups": ["prism-admins"], "scope": ""},
            {"id": VIEWER_ACCOUNT, "email": VIEWER_ACCOUNT, "groups": ["prism-viewers"], "scope": ""},
        ],
    }


def _post(url: str, form: dict[str, str]) -> Any:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
        return json.loads(answer.read())


@dataclass
class OidcProvider:
    process: subprocess.Popen[bytes]
    issuer: str
    folder: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def log(self) -> str:
        return (Path(self.folder.name) / "oidc.log").read_text(errors="replace")

    def client_credentials(self, client: tuple[str, str]) -> str:
        """An access token for a confidential client."""
        answer = _post(
            f"{self.issuer}/token",
            {"grant_type": "client_credentials", "client_id": client[0], "client_secret": client[1]},
        )
        return str(answer["access_token"])

    def approve(self, user_code: str, account: str = DEV_ACCOUNT) -> None:
        """Approves the pending device login `user_code` as `account`."""
        answer = _post(
            f"{self.issuer}/test/device",
            {"user_code": user_code, "account": account, "decision": "approve"},
        )
        assert answer.get("approved") == account, answer

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.folder.cleanup()


def start_oidc(*, access_token_ttl: int = 600) -> OidcProvider:
    """Starts the provider and waits until its discovery document answers."""
    node = os.environ.get("NODE") or shutil.which("node")
    if node is None:
        raise RuntimeError("node not found: install Node.js or set NODE")
    if not os.environ.get("PRISM_OIDC_MODULES"):
        raise RuntimeError("PRISM_OIDC_MODULES is not set: source scripts/tools.sh")
    return on_a_free_port(
        "oidc-provider", lambda port: _start_oidc_on(node, port, access_token_ttl)
    )


def _start_oidc_on(node: str, port: int, access_token_ttl: int) -> OidcProvider:
    folder = tempfile.TemporaryDirectory(prefix="prism-pyclient-oidc-")
    log = Path(folder.name) / "oidc.log"
    process = subprocess.Popen(
        [
            node, str(SCRIPT), "serve",
            "--port", str(port),
            "--keys", str(Path(folder.name) / "jwks.json"),
            "--alg", "RS256",
            "--config", json.dumps(_config(access_token_ttl)),
            "--log", str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    provider = OidcProvider(process, f"http://127.0.0.1:{port}", folder)

    def ready() -> bool | None:
        if process.poll() is not None:
            raise ServerExited(f"oidc-provider exited ({process.returncode}):\n{provider.log}")
        try:
            url = f"{provider.issuer}/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return True if json.loads(answer.read()).get("issuer") == provider.issuer else None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    try:
        eventually("oidc-provider to serve its discovery document", ready)
    except BaseException:
        provider.stop()
        raise
    return provider
