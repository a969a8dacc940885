"""A real `prism-proxy` on free ports for the tests, and the redis-server and
nats-server its backends use.

The proxy binary comes from `$PRISM_BIN_DIR` (default: the repository's
`target/debug`, built by `cargo build --workspace --bins`); its pattern
binaries are found beside it. Every wait polls with a deadline.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import grpc

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
LISTENING = re.compile(r"prism-proxy listening on (\S+) \(admin (\S+)\)")
START_TIMEOUT = 30.0


def proxy_binary() -> Path:
    folder = Path(os.environ.get("PRISM_BIN_DIR", REPO / "target" / "debug"))
    binary = folder / "prism-proxy"
    if not binary.is_file():
        raise RuntimeError(
            f"{binary} is missing: run `cargo build --workspace --bins` or set PRISM_BIN_DIR"
        )
    return binary


def eventually(what: str, probe: Callable[[], T | None], timeout: float = START_TIMEOUT) -> T:
    """Polls `probe` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


@dataclass
class Proxy:
    process: subprocess.Popen[bytes]
    address: str
    folder: tempfile.TemporaryDirectory[str]
    admin_address: str = ""

    @property
    def log(self) -> str:
        return (Path(self.folder.name) / "proxy.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.folder.cleanup()

    def wait_serving(self, namespace: str, *, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        """Waits until a KeyValue call on `namespace` is answered by its
        pattern (anything but UNAVAILABLE)."""
        from prism_client._stubs import keyvalue_pb2, keyvalue_pb2_grpc

        with grpc.insecure_channel(self.address) as channel:
            stub = keyvalue_pb2_grpc.KeyValueStub(channel)

            def probe() -> bool | None:
                try:
                    stub.Exists(
                        keyvalue_pb2.ExistsRequest(key="probe"),
                        timeout=2,
                        metadata=(("x-prism-namespace", namespace), *metadata),
                    )
                    return True
                except grpc.RpcError as error:
                    return None if error.code() == grpc.StatusCode.UNAVAILABLE else True

            eventually(f"namespace {namespace} to serve", probe)


def start_proxy(config: str | None = None, *, listen: str = "127.0.0.1:0") -> Proxy:
    """Starts the proxy (no config: `default` on MemStore, `events` on
    PubSub) and waits until it listens; `listen` reuses a data address."""
    folder = tempfile.TemporaryDirectory(prefix="prism-pyclient-")
    args = [
        str(proxy_binary()),
        "--listen", listen,
        "--admin-listen", "127.0.0.1:0",
        "--metrics-listen", "127.0.0.1:0",
    ]
    if config is not None:
        path = Path(folder.name) / "prism.yaml"
        path.write_text(config)
        args += ["--config", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER_OTLP")}
    env.setdefault("RUST_LOG", "info")
    log = open(Path(folder.name) / "proxy.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    proxy = Proxy(process, "", folder)

    def listening() -> tuple[str, str] | None:
        if process.poll() is not None:
            raise RuntimeError(f"prism-proxy exited ({process.returncode}):\n{proxy.log}")
        match = LISTENING.search(proxy.log)
        return (match.group(1), match.group(2)) if match else None

    try:
        proxy.address, proxy.admin_address = eventually("prism-proxy to listen", listening)
    except BaseException:
        proxy.stop()
        raise
    return proxy


@dataclass
class Redis:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_binary() -> str | None:
    return os.environ.get("PRISM_REDIS_SERVER") or shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerExited(RuntimeError):
    """A server the tests started exited before it answered."""


PORT_ATTEMPTS = 5


def on_a_free_port(
    what: str, start: Callable[[int], T], ports: Callable[[], int] = free_port
) -> T:
    """`start(port)` on a port from `ports`; when the server exits before
    it answers (another process took the port after it was chosen), again
    on a fresh one, up to `PORT_ATTEMPTS` ports."""
    exits: list[str] = []
    for _ in range(PORT_ATTEMPTS):
        try:
            return start(ports())
        except ServerExited as exited:
            exits.append(str(exited))
    raise RuntimeError(f"{what} did not start on {PORT_ATTEMPTS} ports: " + "; ".join(exits))


def start_redis() -> Redis:
    """A throwaway redis-server (no persistence) on a free port, answering PING."""
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("redis-server not found: install it or set PRISM_REDIS_SERVER")
    return on_a_free_port("redis-server", lambda port: _start_redis_on(binary, port))


def _start_redis_on(binary: str, port: int) -> Redis:
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    redis = Redis(process, port)

    def pong() -> bool | None:
        if process.poll() is not None:
            raise ServerExited(f"redis-server exited ({process.returncode}) on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return True if s.recv(16).startswith(b"+PONG") else None
        except OSError:
            return None

    try:
        eventually("redis-server to answer PING", pong)
    except BaseException:
        redis.stop()
        raise
    return redis


@dataclass
class Nats:
    process: subprocess.Popen[bytes]
    port: int
    folder: tempfile.TemporaryDirectory[str]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.folder.cleanup()


def start_nats() -> Nats:
    """A throwaway nats-server with JetStream on a free port (`$NATS_SERVER`,
    or on PATH; `scripts/tools.sh` exports it), answering PING."""
    binary = os.environ.get("NATS_SERVER") or shutil.which("nats-server")
    if binary is None:
        raise RuntimeError("nats-server not found: source scripts/tools.sh or set NATS_SERVER")
    return on_a_free_port("nats-server", lambda port: _start_nats_on(binary, port))


def _start_nats_on(binary: str, port: int) -> Nats:
    folder = tempfile.TemporaryDirectory(prefix="prism-pyclient-nats-")
    process = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", f"{folder.name}/store",
         "-l", f"{folder.name}/nats.log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nats = Nats(process, port, folder)

    def pong() -> bool | None:
        if process.poll() is not None:
            raise ServerExited(f"nats-server exited ({process.returncode}) on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(1)
                if not s.recv(4096).startswith(b"INFO "):
                    return None
                s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
                return True if b"PONG" in s.recv(4096) else None
        except OSError:
            return None

    try:
        eventually("nats-server to answer PING", pong)
    except BaseException:
        nats.stop()
        raise
    return nats


def wait_pubsub_serving(proxy: Proxy, namespace: str) -> None:
    """Waits until a Publish on `namespace` is answered by its pattern."""
    from prism_client._stubs import pubsub_pb2, pubsub_pb2_grpc

    with grpc.insecure_channel(proxy.address) as channel:
        stub = pubsub_pb2_grpc.PubSubStub(channel)

        def probe() -> bool | None:
            try:
                stub.Publish(
                    pubsub_pb2.PublishRequest(topic="probe.ready", payload=b""),
                    timeout=2,
                    metadata=(("x-prism-namespace", namespace),),
                )
                return True
            except grpc.RpcError as error:
                return None if error.code() == grpc.StatusCode.UNAVAILABLE else True

        eventually(f"namespace {namespace} to serve", probe)


def wait_registry_serving(proxy: Proxy, namespace: str) -> None:
    """Waits until a registry Get on `namespace` is answered by its pattern."""
    from prism_client._stubs import registry_pb2, registry_pb2_grpc

    with grpc.insecure_channel(proxy.address) as channel:
        stub = registry_pb2_grpc.MulticastRegistryStub(channel)

        def probe() -> bool | None:
            try:
                stub.Get(
                    registry_pb2.GetRequest(identity="probe"),
                    timeout=2,
                    metadata=(("x-prism-namespace", namespace),),
                )
                return True
            except grpc.RpcError as error:
                return None if error.code() == grpc.StatusCode.UNAVAILABLE else True

        eventually(f"namespace {namespace} to serve", probe)
