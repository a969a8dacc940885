"""PubSub through the real proxy (the embedded `events` namespace, MemStore):
delivery in order, batches, and an unsubscribe that ends the stream."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from prism_client import InvalidArgument, PrismClient


@pytest.fixture
def events(client: PrismClient) -> PrismClient:
    return client.namespace("events")


def topic() -> str:
    return f"orders.{uuid.uuid4().hex[:8]}.created"


async def test_subscriber_gets_published_messages_in_order(events: PrismClient) -> None:
    t = topic()
    async with events.pubsub.subscribe(t) as subscription:
        ids = [await events.pubsub.publish(t, f"m{i}".encode(), {"n": str(i)}) for i in range(3)]
        ids += await events.pubsub.publish_batch([(t, b"m3"), (t, b"m4", {"n": "4"})])
        got = [await asyncio.wait_for(anext(subscription), 20) for _ in range(5)]
    assert [m.payload for m in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.message_id for m in got] == ids
    assert got[1].metadata == {"n": "1"}
    assert all(m.topic == t for m in got)


async def test_unsubscribe_ends_the_stream(events: PrismClient) -> None:
    t = topic()
    async with events.pubsub.subscribe(t, subscriber_id="sub-a") as subscription:
        assert await events.pubsub.unsubscribe(t, "sub-a") is True

        async def drain() -> list[bytes]:
            return [m.payload async for m in subscription]

        assert await asyncio.wait_for(drain(), 20) == []


async def test_wildcard_in_a_published_topic_is_invalid_argument(events: PrismClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await events.pubsub.publish("orders.*", b"x")
    assert caught.value.trace_id
