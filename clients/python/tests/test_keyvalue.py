"""RFC-018 POC 1 and 2: the same client code through the real proxy on
MemStore and on Redis: set/get, delete, exists, TTL, scan by prefix over
several pages, and errors that carry a trace id."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Iterator

import pytest

from prism_client import InvalidArgument, NotFound, PrismClient
from proxy import Proxy, start_proxy, start_redis

REDIS_CONFIG = """namespaces:
  - name: default
    pattern: keyvalue
    backend: redis
    config:
      address: {url}
"""


@pytest.fixture(scope="module", params=["memstore", "redis"])
def proxy(request: pytest.FixtureRequest) -> Iterator[Proxy]:
    """The `default` namespace on each backend in turn."""
    redis = start_redis() if request.param == "redis" else None
    try:
        proxy = start_proxy(REDIS_CONFIG.format(url=redis.url) if redis else None)
        try:
            proxy.wait_serving("default")
            yield proxy
        finally:
            proxy.stop()
    finally:
        if redis is not None:
            redis.stop()

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}:"


async def test_set_then_get_returns_the_bytes(client: PrismClient) -> None:
    key = unique("poc1-") + "user"
    value = bytes(range(256))
    await client.keyvalue.set(key, value)
    assert await client.keyvalue.get(key) == value
    await client.keyvalue.set(key, b"second")
    assert await client.keyvalue.get(key) == b"second"


async def test_delete_removes_and_reports_whether_it_was_there(client: PrismClient) -> None:
    key = unique("poc1-") + "gone"
    await client.keyvalue.set(key, b"v")
    assert await client.keyvalue.exists(key)
    assert await client.keyvalue.delete(key) is True
    assert not await client.keyvalue.exists(key)
    assert await client.keyvalue.delete(key) is False
    with pytest.raises(NotFound):
        await client.keyvalue.get(key)


async def test_scan_yields_every_key_with_the_prefix_across_pages(client: PrismClient) -> None:
    prefix = unique("scan-")
    wanted = {f"{prefix}{i:03}" for i in range(23)}
    others = {f"{unique('other-')}{i}" for i in range(4)}
    for key in wanted | others:
        await client.keyvalue.set(key, b"x")
    seen = [key async for key in client.keyvalue.scan(prefix, page_size=5)]
    assert len(seen) == len(wanted), "no key twice, none missing"
    assert set(seen) == wanted


async def test_ttl_expires_the_key(client: PrismClient) -> None:
    key = unique("ttl-") + "k"
    await client.keyvalue.set(key, b"v", ttl=1)
    assert await client.keyvalue.get(key) == b"v"
    deadline = asyncio.get_running_loop().time() + 20
    while await client.keyvalue.exists(key):
        assert asyncio.get_running_loop().time() < deadline, "key outlived its TTL by 19s"
        await asyncio.sleep(0.1)
    with pytest.raises(NotFound):
        await client.keyvalue.get(key)


async def test_not_found_carries_the_message_and_trace_id(client: PrismClient) -> None:
    with pytest.raises(NotFound) as caught:
        await client.keyvalue.get(unique("missing-"))
    error = caught.value
    assert error.message, "the proxy's message is kept"
    assert error.trace_id is not None and TRACE_ID.match(error.trace_id), error.trace_id
    assert error.trace_id in str(error)


async def test_empty_key_is_invalid_argument_naming_the_field(client: PrismClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.keyvalue.set("", b"v")
    assert "key" in caught.value.message
    assert caught.value.trace_id


async def test_other_namespace_is_sent_with_each_call(client: PrismClient) -> None:
    with pytest.raises(NotFound) as caught:
        await client.namespace("no-such-namespace").keyvalue.get("k")
    assert "no-such-namespace" in caught.value.message
    # The derived client shares the connection; the original still works.
    key = unique("ns-") + "k"
    await client.keyvalue.set(key, b"v")
    assert await client.namespace("default").keyvalue.get(key) == b"v"


async def test_a_value_that_is_not_bytes_is_refused_before_sending(client: PrismClient) -> None:
    with pytest.raises(TypeError, match="value must be bytes, got str"):
        await client.keyvalue.set("k", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        await client.keyvalue.set("k", b"v", ttl=0)
