"""Fixtures: one real proxy per test module, a client per test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from prism_client import PrismClient  # noqa: E402
from proxy import Proxy, start_proxy, wait_pubsub_serving  # noqa: E402


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    """A proxy without a config, once both its namespaces serve: `default`
    on MemStore, `events` on PubSub."""
    proxy = start_proxy()
    try:
        proxy.wait_serving("default")
        wait_pubsub_serving(proxy, "events")
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
async def client(proxy: Proxy) -> AsyncIterator[PrismClient]:
    async with PrismClient(proxy.address, timeout=10) as client:
        yield client
