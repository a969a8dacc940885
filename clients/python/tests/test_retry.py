"""Retries: the backoff policy as a pure function, and the client against an
in-process KeyValue/PubSub server that answers UNAVAILABLE a set number of
times, so the attempts can be counted."""

from __future__ import annotations

import socket
import time
from typing import AsyncIterator

import grpc
import pytest

from prism_client import NO_RETRY, PrismClient, RetryPolicy, Unavailable
from prism_client._stubs import keyvalue_pb2, keyvalue_pb2_grpc, pubsub_pb2, pubsub_pb2_grpc

FAST = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    assert [policy.ceiling(r) for r in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_spreads_the_wait_over_zero_to_the_ceiling() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0)
    assert policy.delay(2, 0.0) == 0.0
    assert policy.delay(2, 0.5) == pytest.approx(0.2)
    assert policy.delay(2, 0.999) < policy.ceiling(2)


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="max_backoff"):
        RetryPolicy(initial_backoff=1.0, max_backoff=0.5)


class Flaky(keyvalue_pb2_grpc.KeyValueServicer, pubsub_pb2_grpc.PubSubServicer):
    """Answers UNAVAILABLE to the first `failures` calls, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def _fail_first(self, context: grpc.aio.ServicerContext) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            await context.send_initial_metadata((("x-prism-trace-id", "ab" * 16),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "pattern restarting")

    async def Get(self, request, context):  # noqa: N802 - generated servicer names
        await self._fail_first(context)
        return keyvalue_pb2.GetResponse(value=b"value")

    async def Publish(self, request, context):  # noqa: N802
        await self._fail_first(context)
        return pubsub_pb2.PublishResponse(message_id="1")


@pytest.fixture
async def flaky_server() -> AsyncIterator[tuple[str, Flaky]]:
    servicer = Flaky(failures=0)
    server = grpc.aio.server()
    keyvalue_pb2_grpc.add_KeyValueServicer_to_server(servicer, server)
    pubsub_pb2_grpc.add_PubSubServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(None)


async def test_an_idempotent_call_is_retried_until_it_succeeds(flaky_server) -> None:
    address, servicer = flaky_server
    servicer.failures = 3
    async with PrismClient(address, retry=FAST) as client:
        assert await client.keyvalue.get("k") == b"value"
    assert servicer.calls == 4


async def test_retries_stop_after_max_attempts_with_the_last_error(flaky_server) -> None:
    address, servicer = flaky_server
    servicer.failures = 100
    async with PrismClient(address, retry=FAST) as client:
        with pytest.raises(Unavailable) as caught:
            await client.keyvalue.get("k")
    assert servicer.calls == FAST.max_attempts
    assert caught.value.message == "pattern restarting"
    assert caught.value.trace_id == "ab" * 16


async def test_publish_is_not_retried(flaky_server) -> None:
    address, servicer = flaky_server
    servicer.failures = 1
    async with PrismClient(address, retry=FAST) as client:
        with pytest.raises(Unavailable):
            await client.pubsub.publish("t", b"x")
    assert servicer.calls == 1


async def test_no_retry_policy_makes_one_attempt(flaky_server) -> None:
    address, servicer = flaky_server
    servicer.failures = 1
    async with PrismClient(address, retry=NO_RETRY) as client:
        with pytest.raises(Unavailable):
            await client.keyvalue.get("k")
    assert servicer.calls == 1


async def test_retries_end_at_the_deadline(flaky_server) -> None:
    address, servicer = flaky_server
    servicer.failures = 10_000
    patient = RetryPolicy(max_attempts=10_000, initial_backoff=0.05, max_backoff=0.2)
    started = time.monotonic()
    async with PrismClient(address, retry=patient, timeout=1.0) as client:
        with pytest.raises(Unavailable):
            await client.keyvalue.get("k")
    elapsed = time.monotonic() - started
    assert servicer.calls > 1, "it retried"
    assert elapsed < 5.0, f"a 1s deadline ended after {elapsed:.1f}s"


async def test_nothing_listening_is_unavailable_within_the_deadline() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    # The port is free again: nothing listens there.
    started = time.monotonic()
    async with PrismClient(address, retry=FAST, timeout=2.0) as client:
        with pytest.raises(Unavailable):
            await client.keyvalue.get("k")
    assert time.monotonic() - started < 10.0
