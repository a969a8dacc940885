"""The test harness itself: a server whose chosen port was taken before it
started is started again on another one."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

from proxy import PORT_ATTEMPTS, _start_redis_on, free_port, on_a_free_port, redis_binary


def test_a_server_whose_port_was_taken_starts_on_a_fresh_one() -> None:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server not found")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = int(taken.getsockname()[1])

        def ports() -> Iterator[int]:
            yield taken_port
            while True:
                yield free_port()

        chosen = ports()
        redis = on_a_free_port(
            "redis-server", lambda port: _start_redis_on(binary, port), lambda: next(chosen)
        )
        try:
            assert redis.port != taken_port
            with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                assert s.recv(16).startswith(b"+PONG")
        finally:
            redis.stop()


def test_a_port_always_taken_is_reported_after_every_attempt() -> None:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server not found")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = int(taken.getsockname()[1])
        with pytest.raises(RuntimeError) as failed:
            on_a_free_port(
                "redis-server", lambda port: _start_redis_on(binary, port), lambda: taken_port
            )
    message = str(failed.value)
    assert f"did not start on {PORT_ATTEMPTS} ports" in message
    assert message.count(f"on port {taken_port}") == PORT_ATTEMPTS
