"""The test harness itself: a server whose chosen port was taken before it
started is started again on another one."""

from __future__ import annotations

import socket
from typing import Callable, Iterator

import pytest

from proxy import (
    PORT_ATTEMPTS,
    Redis,
    _start_redis_on,
    free_port,
    on_a_free_port,
    redis_binary,
)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket listens on for the whole test."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def start_redis_from(ports: Callable[[], int]) -> Redis:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server not found")
    return on_a_free_port("redis-server", lambda port: _start_redis_on(binary, port), ports)


def test_a_server_whose_port_was_taken_starts_on_a_fresh_one(taken_port: int) -> None:
    offered = iter([taken_port])
    redis = start_redis_from(lambda: next(offered, None) or free_port())
    try:
        assert redis.port != taken_port
        with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16).startswith(b"+PONG")
    finally:
        redis.stop()


def test_a_port_always_taken_is_reported_after_every_attempt(taken_port: int) -> None:
    with pytest.raises(RuntimeError) as failed:
        start_redis_from(lambda: taken_port)
    message = str(failed.value)
    assert f"did not start on {PORT_ATTEMPTS} ports" in message
    assert message.count(f"on port {taken_port}") == PORT_ATTEMPTS
