"""A subscription outlives a crash of the pattern behind it (the proxy's
supervisor starts a new pattern process and resubscribes: the client's
stream keeps delivering) and a restart of the proxy itself (the stream fails
UNAVAILABLE and the client opens it again); a registry inbox outlives a
crash of its pattern (the proxy ends the stream UNAVAILABLE, the client
calls Receive again)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid

import grpc
import pytest

from prism_client import PrismClient, PrismError, Unavailable
from prism_client._proto.prism.admin.v1 import admin_pb2, admin_pb2_grpc
from proxy import (
    Proxy,
    start_nats,
    start_proxy,
    start_redis,
    wait_pubsub_serving,
    wait_registry_serving,
)

WAIT = 30.0


async def pattern_pid(proxy: Proxy, namespace: str) -> int:
    async with grpc.aio.insecure_channel(proxy.admin_address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
        listing = await stub.ListPatterns(admin_pb2.ListPatternsRequest(), timeout=5)
    return next(int(p.pid) for p in listing.patterns if p.namespace == namespace)


async def test_a_subscription_keeps_delivering_after_the_pattern_crashes(proxy: Proxy) -> None:
    loop = asyncio.get_running_loop()
    topic = f"resume.{uuid.uuid4().hex[:8]}"
    async with PrismClient(proxy.address, namespace="events") as events:
        async with events.pubsub.subscribe(topic) as subscription:
            # One reader for the whole test: cancelling a pending read
            # would cancel the stream itself.
            inbox: asyncio.Queue[bytes] = asyncio.Queue()

            async def read() -> None:
                async for message in subscription:
                    inbox.put_nowait(message.payload)

            reader = asyncio.create_task(read())
            try:
                await events.pubsub.publish(topic, b"before")
                assert await asyncio.wait_for(inbox.get(), WAIT) == b"before"

                old = await pattern_pid(proxy, "events")
                assert old > 0
                os.kill(old, signal.SIGKILL)

                # Publish until a message arrives: publishes while the
                # pattern is down fail or reach no subscriber, and the proxy
                # resubscribes on its own schedule.
                deadline = loop.time() + WAIT
                attempt = 0
                while inbox.empty():
                    assert not reader.done(), f"the stream ended: {reader}"
                    assert loop.time() < deadline, "no delivery after the pattern restarted"
                    attempt += 1
                    with contextlib.suppress(PrismError):
                        await events.pubsub.publish(topic, f"after-{attempt}".encode())
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(_until_not_empty(inbox), 0.5)
                assert inbox.get_nowait().startswith(b"after-")
            finally:
                reader.cancel()
            new = await pattern_pid(proxy, "events")
            assert new not in (0, old), "a new pattern process serves"


async def _until_not_empty(queue: asyncio.Queue[bytes]) -> None:
    while queue.empty():
        await asyncio.sleep(0.02)


async def test_a_subscription_opens_again_after_the_proxy_restarts() -> None:
    loop = asyncio.get_running_loop()
    first = start_proxy()
    second: Proxy | None = None
    try:
        wait_pubsub_serving(first, "events")
        topic = f"resume.{uuid.uuid4().hex[:8]}"
        async with PrismClient(first.address, namespace="events") as events:
            async with events.pubsub.subscribe(topic, resume_timeout=WAIT) as subscription:
                inbox: asyncio.Queue[bytes] = asyncio.Queue()

                async def read() -> None:
                    async for message in subscription:
                        inbox.put_nowait(message.payload)

                reader = asyncio.create_task(read())
                try:
                    await events.pubsub.publish(topic, b"before")
                    assert await asyncio.wait_for(inbox.get(), WAIT) == b"before"

                    address = first.address
                    await loop.run_in_executor(None, first.stop)
                    second = await loop.run_in_executor(None, lambda: start_proxy(listen=address))
                    await loop.run_in_executor(None, wait_pubsub_serving, second, "events")

                    deadline = loop.time() + WAIT
                    attempt = 0
                    while inbox.empty():
                        assert not reader.done(), f"the stream ended: {reader}"
                        assert loop.time() < deadline, "no delivery after the proxy restarted"
                        attempt += 1
                        with contextlib.suppress(PrismError):
                            await events.pubsub.publish(topic, f"after-{attempt}".encode())
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(_until_not_empty(inbox), 0.5)
                    assert inbox.get_nowait().startswith(b"after-")
                    assert subscription.resumed >= 1
                finally:
                    reader.cancel()
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_without_resume_the_failure_is_raised() -> None:
    proxy = start_proxy()
    try:
        wait_pubsub_serving(proxy, "events")
        async with PrismClient(proxy.address, namespace="events") as events:
            async with events.pubsub.subscribe("resume.off", resume_timeout=None) as subscription:
                proxy.process.send_signal(signal.SIGTERM)
                with pytest.raises(Unavailable) as caught:
                    await asyncio.wait_for(anext(subscription), WAIT)
                assert caught.value.trace_id
                assert subscription.resumed == 0
    finally:
        proxy.stop()


REGISTRY_CONFIG = """namespaces:
  - {{name: devices, pattern: multicast-registry, config: {{registry: {{backend: redis, address: "{redis}"}}, messaging: {{backend: nats, url: "{nats}", jetstream: false}}}}}}
"""


async def test_an_inbox_opens_again_after_its_pattern_restarts() -> None:
    loop = asyncio.get_running_loop()
    # Identities in Redis outlive the pattern process; messages go over core NATS.
    redis, nats = start_redis(), start_nats()
    proxy: Proxy | None = None
    try:
        proxy = start_proxy(REGISTRY_CONFIG.format(redis=redis.url, nats=nats.url))
        wait_registry_serving(proxy, "devices")
        async with PrismClient(proxy.address, namespace="devices") as devices:
            name = f"dev-{uuid.uuid4().hex[:8]}"
            await devices.registry.register(name, {"kind": "resume"})
            async with devices.registry.receive(name, resume_timeout=WAIT) as inbox:
                got: asyncio.Queue[bytes] = asyncio.Queue()

                async def read() -> None:
                    async for message in inbox:
                        got.put_nowait(message.payload)

                reader = asyncio.create_task(read())
                try:
                    sent = await devices.registry.multicast({"kind": "resume"}, b"before")
                    assert sent.delivered_count == 1
                    assert await asyncio.wait_for(got.get(), WAIT) == b"before"

                    old = await pattern_pid(proxy, "devices")
                    os.kill(old, signal.SIGKILL)

                    # Multicast until one arrives: until the new pattern
                    # serves and the inbox is open again, they fail or
                    # reach no receiver (core NATS keeps nothing).
                    deadline = loop.time() + WAIT
                    attempt = 0
                    while got.empty():
                        assert not reader.done(), f"the inbox ended: {reader}"
                        assert loop.time() < deadline, "no delivery after the pattern restarted"
                        attempt += 1
                        with contextlib.suppress(PrismError):
                            await devices.registry.multicast(
                                {"kind": "resume"}, f"after-{attempt}"
                            )
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(_until_not_empty(got), 0.5)
                    assert got.get_nowait().startswith(b"after-")
                    assert inbox.resumed >= 1
                finally:
                    reader.cancel()
            assert await pattern_pid(proxy, "devices") not in (0, old)
    finally:
        if proxy is not None:
            proxy.stop()
        redis.stop()
        nats.stop()
