"""PubSub through the real proxy on MemStore and on core NATS (RFC-018
POC 3): delivery in order, fan-out to three subscribers and to a hundred,
batches, and an unsubscribe that ends the stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import AsyncIterator, Iterator

import pytest

from prism_client import InvalidArgument, NotFound, PrismClient, Subscription
from proxy import Proxy, start_nats, start_proxy, wait_pubsub_serving

CONFIG = """namespaces:
  - name: events
    pattern: pubsub
    backend: {backend}
"""
WAIT = 20.0


@pytest.fixture(scope="module", params=["memstore", "nats"])
def proxy(request: pytest.FixtureRequest) -> Iterator[Proxy]:
    nats = start_nats() if request.param == "nats" else None
    backend = f'nats\n    config: {{url: "{nats.url}"}}' if nats else "memstore"
    try:
        proxy = start_proxy(CONFIG.format(backend=backend))
        try:
            wait_pubsub_serving(proxy, "events")
            yield proxy
        finally:
            proxy.stop()
    finally:
        if nats is not None:
            nats.stop()


@pytest.fixture
async def events(proxy: Proxy) -> AsyncIterator[PrismClient]:
    async with PrismClient(proxy.address, namespace="events") as client:
        yield client


def topic() -> str:
    return f"orders.{uuid.uuid4().hex[:8]}.created"


async def receive(subscription: Subscription, count: int) -> list[bytes]:
    return [(await asyncio.wait_for(anext(subscription), WAIT)).payload for _ in range(count)]


async def test_subscriber_gets_published_messages_in_order(events: PrismClient) -> None:
    t = topic()
    async with events.pubsub.subscribe(t) as subscription:
        ids = [await events.pubsub.publish(t, f"m{i}".encode(), {"n": str(i)}) for i in range(3)]
        ids += await events.pubsub.publish_batch([(t, b"m3"), (t, b"m4", {"n": "4"})])
        got = [await asyncio.wait_for(anext(subscription), WAIT) for _ in range(5)]
    assert [m.payload for m in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.message_id for m in got] == ids
    assert got[1].metadata == {"n": "1"}
    assert all(m.topic == t for m in got)


async def test_fan_out_to_three_subscribers_in_order(events: PrismClient) -> None:
    t = topic()
    sent = [f"m{i}".encode() for i in range(10)]
    async with contextlib.AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(events.pubsub.subscribe(t)) for _ in range(3)
        ]
        for payload in sent:
            await events.pubsub.publish(t, payload)
        received = await asyncio.gather(*(receive(s, len(sent)) for s in subscriptions))
    assert received == [sent, sent, sent]


async def test_a_hundred_concurrent_subscribers_each_get_the_message(events: PrismClient) -> None:
    t = topic()
    async with contextlib.AsyncExitStack() as stack:
        subscriptions = await asyncio.gather(
            *(stack.enter_async_context(events.pubsub.subscribe(t)) for _ in range(100))
        )
        await events.pubsub.publish(t, b"to all")
        received = await asyncio.gather(*(receive(s, 1) for s in subscriptions))
    assert received == [[b"to all"]] * 100


async def test_wildcard_subscription_sees_matching_topics_only(events: PrismClient) -> None:
    base = f"shop{uuid.uuid4().hex[:8]}"
    async with events.pubsub.subscribe(f"{base}.*.created") as subscription:
        await events.pubsub.publish(f"{base}.eu.deleted", b"skip")
        await events.pubsub.publish(f"{base}.eu.created", b"eu")
        await events.pubsub.publish(f"{base}.us.created", b"us")
        assert await receive(subscription, 2) == [b"eu", b"us"]


async def test_unsubscribe_ends_the_stream(events: PrismClient) -> None:
    t = topic()
    async with events.pubsub.subscribe(t, subscriber_id="sub-a") as subscription:
        assert await events.pubsub.unsubscribe(t, "sub-a") is True

        async def drain() -> list[bytes]:
            return [m.payload async for m in subscription]

        await events.pubsub.publish(t, b"after unsubscribe")
        assert await asyncio.wait_for(drain(), WAIT) == []


async def test_wildcard_in_a_published_topic_is_invalid_argument(events: PrismClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await events.pubsub.publish("orders.*", b"x")
    assert caught.value.trace_id


async def test_a_refused_subscription_raises_with_the_trace_id(events: PrismClient) -> None:
    with pytest.raises(NotFound) as caught:
        async with events.namespace("no-such-namespace").pubsub.subscribe("t"):
            pass
    assert "no-such-namespace" in caught.value.message
    assert caught.value.trace_id


async def test_a_bad_topic_fails_the_iteration(events: PrismClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        async for _ in events.pubsub.subscribe("orders..bad"):
            pass
    assert "topic" in caught.value.message
