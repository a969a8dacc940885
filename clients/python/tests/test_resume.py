"""A subscription outlives a crash of the pattern behind it: the proxy's
supervisor starts a new pattern process and resubscribes, and the client's
stream keeps delivering without the app doing anything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid

import grpc

from prism_client import PrismClient, PrismError
from prism_client._proto.prism.admin.v1 import admin_pb2, admin_pb2_grpc
from proxy import Proxy

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
