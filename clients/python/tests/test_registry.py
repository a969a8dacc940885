"""RFC-018 POC 4 through the real proxy, with the registry and its messages
on MemStore (both slots in the pattern process), on Redis + core NATS and on
Redis + NATS JetStream (durable inboxes):
filtered multicast, the heartbeat and TTL expiry, filters with operators,
metadata that keeps its types, and inboxes that get what is multicast."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Iterator

import pytest

from prism_client import (
    DeliveryStatus,
    Inbox,
    InboxMessage,
    InvalidArgument,
    NotFound,
    PrismClient,
)
from proxy import Proxy, start_nats, start_proxy, start_redis, wait_registry_serving

# `default` is RFC-018's test's namespace (a client without one speaks to
# it); the other tests use `devices`, whose sweep runs every 200 ms.
CONFIG = """namespaces:
  - {{name: default, pattern: multicast-registry, config: {{registry: {registry}, messaging: {messaging}}}}}
  - {{name: devices, pattern: multicast-registry, config: {{registry: {registry}, messaging: {messaging}, sweep_interval_ms: 200}}}}
"""
WAIT = 30.0


@dataclass
class RegistryEnv:
    proxy: Proxy
    #: The messaging slot keeps messages for identities with no receiver.
    stores: bool

    @property
    def address(self) -> str:
        return self.proxy.address


@pytest.fixture(scope="module", params=["memstore", "redis+nats", "redis+jetstream"])
def registry_env(request: pytest.FixtureRequest) -> Iterator[RegistryEnv]:
    redis = nats = None
    try:
        if request.param == "memstore":
            registry = messaging = "{backend: memstore}"
        else:
            redis, nats = start_redis(), start_nats()
            registry = f'{{backend: redis, address: "{redis.url}"}}'
            jetstream = "true" if request.param == "redis+jetstream" else "false"
            messaging = f'{{backend: nats, url: "{nats.url}", jetstream: {jetstream}}}'
        proxy = start_proxy(CONFIG.format(registry=registry, messaging=messaging))
        try:
            wait_registry_serving(proxy, "default")
            wait_registry_serving(proxy, "devices")
            yield RegistryEnv(proxy, stores=request.param != "redis+nats")
        finally:
            proxy.stop()
    finally:
        for server in (redis, nats):
            if server is not None:
                server.stop()


@pytest.fixture
async def devices(registry_env: RegistryEnv) -> AsyncIterator[PrismClient]:
    async with PrismClient(registry_env.address, namespace="devices") as client:
        yield client


def tag() -> str:
    """A value no other test's identities carry."""
    return uuid.uuid4().hex[:8]


async def next_message(inbox: Inbox) -> InboxMessage:
    return await asyncio.wait_for(anext(inbox), WAIT)


async def test_filtered_multicast(registry_env: RegistryEnv) -> None:
    """RFC-018's POC 4 test as written there. Only the address is the test
    proxy's, and sensor-1 has a receiver open: a message that no receiver
    takes is PENDING (or FAILED), never delivered."""
    client = PrismClient(registry_env.address)
    try:
        # Register devices
        await client.registry.register("sensor-1", {"type": "sensor", "floor": 1})
        await client.registry.register("sensor-2", {"type": "sensor", "floor": 2})
        await client.registry.register("actuator-1", {"type": "actuator", "floor": 1})

        async with client.registry.receive("sensor-1") as inbox:
            # Multicast to floor 1 sensors only
            result = await client.registry.multicast(
                filter={"type": "sensor", "floor": 1},
                message={"command": "read"}
            )

            assert result.target_count == 1  # Only sensor-1
            assert result.delivered_count == 1

            assert result.status("sensor-1") == DeliveryStatus.DELIVERED
            message = await next_message(inbox)
            assert message.json() == {"command": "read"}
            assert message.multicast_id == result.multicast_id
    finally:
        await client.close()


async def test_metadata_keeps_its_types(devices: PrismClient) -> None:
    name = f"meta-{tag()}"
    metadata = {
        "floor": 3,
        "temperature": 21.5,
        "big": 2**53,
        "online": True,
        "owner": None,
        "tags": ["a", 1, False],
        "location": {"building": "a", "room": 101},
    }
    registration = await devices.registry.register(name, metadata)
    assert registration.created and registration.expires_at_ms is None
    got = await devices.registry.get(name)
    assert got.metadata == metadata
    assert type(got.metadata["floor"]) is int
    assert type(got.metadata["temperature"]) is float
    assert type(got.metadata["location"]["room"]) is int


async def test_register_again_is_a_heartbeat_and_the_ttl_expires(devices: PrismClient) -> None:
    loop = asyncio.get_running_loop()
    name = f"beat-{tag()}"
    first = await devices.registry.register(name, {"v": 1}, ttl=3)
    assert first.created
    assert first.expires_at_ms is not None
    await asyncio.sleep(0.1)
    again = await devices.registry.register(name, {"v": 2}, ttl=3)
    assert not again.created
    assert again.expires_at_ms is not None and again.expires_at_ms > first.expires_at_ms
    assert (await devices.registry.get(name)).metadata == {"v": 2}

    # No more heartbeats: the identity expires, for Get and for Enumerate.
    deadline = loop.time() + WAIT
    while True:
        try:
            await devices.registry.get(name)
        except NotFound as gone:
            assert gone.trace_id
            break
        assert loop.time() < deadline, f"{name} did not expire"
        await asyncio.sleep(0.2)
    listed = await devices.registry.enumerate(filter={"v": 2})
    assert name not in [i.identity for i in listed]


async def test_filters_with_operators(devices: PrismClient) -> None:
    t = tag()
    fleet = {
        f"{t}-a": {"t": t, "type": "sensor", "floor": 1, "loc": {"building": "north"}},
        f"{t}-b": {"t": t, "type": "sensor", "floor": 2, "loc": {"building": "south"}},
        f"{t}-c": {"t": t, "type": "actuator", "floor": 3, "loc": {"building": "north"}},
        f"{t}-d": {"t": t, "type": "camera", "floor": 4, "battery": 80},
        f"{t}-e": {"t": t, "type": "sensor", "floor": 5, "battery": 15},
    }
    for name, metadata in fleet.items():
        await devices.registry.register(name, metadata)

    async def names(filter: dict[str, object]) -> list[str]:
        found = await devices.registry.enumerate(filter={"t": t, **filter})
        return [i.identity for i in found]

    def ids(*suffixes: str) -> list[str]:
        return [f"{t}-{s}" for s in suffixes]

    assert await names({}) == ids("a", "b", "c", "d", "e")
    assert await names({"floor": {"$gte": 2, "$lt": 5}}) == ids("b", "c", "d")
    assert await names({"type": {"$in": ["camera", "actuator"]}}) == ids("c", "d")
    assert await names({"type": {"$ne": "sensor"}}) == ids("c", "d")
    assert await names({"loc.building": "north"}) == ids("a", "c")
    assert await names({"battery": {"$exists": True}}) == ids("d", "e")
    assert await names({"type": {"$prefix": "act"}}) == ids("c")
    assert await names({"$or": [{"floor": 1}, {"battery": {"$lt": 20}}]}) == ids("a", "e")
    assert await names({"$not": {"type": "sensor"}}) == ids("c", "d")

    # Page by page: every identity once, the total known from the first page.
    pages = devices.registry.enumerate(filter={"t": t}, page_size=2)
    seen = [i.identity async for i in pages]
    assert seen == ids("a", "b", "c", "d", "e")
    assert pages.total_count == 5
    bare = await devices.registry.enumerate(filter={"t": t}, include_metadata=False)
    assert [i.metadata for i in bare] == [{}] * 5


async def test_a_bad_filter_is_refused_naming_the_problem(devices: PrismClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await devices.registry.enumerate(filter={"floor": {"$bogus": 1}})
    assert "$bogus" in caught.value.message
    assert caught.value.trace_id
    # What a Struct cannot carry is refused before anything is sent.
    with pytest.raises(ValueError, match=r"filter\.floor"):
        await devices.registry.enumerate(filter={"floor": 2**60})
    with pytest.raises(ValueError, match="ttl"):
        await devices.registry.register("x", {}, ttl=0)


async def test_multicast_without_a_receiver_is_pending_or_failed(
    registry_env: RegistryEnv, devices: PrismClient
) -> None:
    t = tag()
    name = f"{t}-idle"
    await devices.registry.register(name, {"t": t})
    result = await devices.registry.multicast({"t": t}, b"\x00raw", metadata={"k": "v"})
    assert result.target_count == 1
    assert result.delivered_count == 0
    if registry_env.stores:
        # Kept for it: the next receive starts with it.
        assert result.pending_count == 1
        assert result.status(name) == DeliveryStatus.PENDING
        async with devices.registry.receive(name) as inbox:
            message = await next_message(inbox)
        assert message.payload == b"\x00raw"
        assert message.metadata.get("k") == "v"
    else:
        assert result.failed_count == 1
        assert result.status(name) == DeliveryStatus.FAILED
        assert result.results[0].error


async def test_fan_out_reaches_every_receiver_once(devices: PrismClient) -> None:
    t = tag()
    names = [f"{t}-{i}" for i in range(5)]
    for name in names:
        await devices.registry.register(name, {"t": t, "even": int(name[-1]) % 2 == 0})
    inboxes = [devices.registry.receive(name) for name in names]
    for inbox in inboxes:
        await inbox.open()
    try:
        result = await devices.registry.multicast({"t": t, "even": True}, "hello")
        assert (result.target_count, result.delivered_count) == (3, 3)
        assert [d.identity for d in result.results] == names[0::2]
        for inbox in inboxes[0::2]:
            assert (await next_message(inbox)).payload == b"hello"
        everyone = await devices.registry.multicast({"t": t}, "all")
        assert everyone.delivered_count == 5
        # The odd ones' first message is the second multicast: the first never reached them.
        for inbox in inboxes:
            assert (await next_message(inbox)).payload == b"all"
    finally:
        for inbox in inboxes:
            await inbox.close()


async def test_unregister_forgets_the_identity(devices: PrismClient) -> None:
    name = f"gone-{tag()}"
    await devices.registry.register(name, {})
    assert await devices.registry.unregister(name)
    assert not await devices.registry.unregister(name)
    with pytest.raises(NotFound):
        await devices.registry.get(name)
    with pytest.raises(NotFound) as caught:
        await devices.registry.receive(name).open()
    assert caught.value.trace_id
