"""A proxy with auth on, trusting an issuer the test serves on a free port:
the client sends its bearer token (a string or a provider asked per call),
and refusals map to `Unauthenticated` / `PermissionDenied` with a trace id."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import pytest

from prism_client import PermissionDenied, PrismClient, Unauthenticated
from proxy import Issuer, Proxy, start_proxy

CONFIG = """auth:
  issuers:
    - issuer: {issuer}
      audiences: [prism]
  leeway_seconds: 0
namespaces:
  - name: orders
    pattern: keyvalue
    access:
      read: ["group:orders-readers", "group:orders-writers"]
      write: ["group:orders-writers"]
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def auth_proxy(issuer: Issuer) -> Iterator[Proxy]:
    proxy = start_proxy(CONFIG.format(issuer=issuer.issuer))
    try:
        token = issuer.token("probe", groups=["orders-readers"])
        proxy.wait_serving("orders", metadata=(("authorization", f"Bearer {token}"),))
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
async def writer(auth_proxy: Proxy, issuer: Issuer) -> AsyncIterator[PrismClient]:
    token = issuer.token("svc-writer", groups=["orders-writers"])
    async with PrismClient(auth_proxy.address, namespace="orders", token=token) as client:
        yield client


async def test_a_token_is_sent_and_accepted(writer: PrismClient) -> None:
    await writer.keyvalue.set("auth-k", b"v")
    assert await writer.keyvalue.get("auth-k") == b"v"


async def test_without_a_token_the_call_is_unauthenticated(auth_proxy: Proxy) -> None:
    async with PrismClient(auth_proxy.address, namespace="orders") as anonymous:
        with pytest.raises(Unauthenticated) as caught:
            await anonymous.keyvalue.get("auth-k")
    assert caught.value.message
    assert caught.value.trace_id


async def test_a_reader_cannot_write(auth_proxy: Proxy, issuer: Issuer) -> None:
    token = issuer.token("svc-reader", groups=["orders-readers"])
    async with PrismClient(auth_proxy.address, namespace="orders", token=token) as reader:
        with pytest.raises(PermissionDenied) as caught:
            await reader.keyvalue.set("auth-k", b"nope")
    assert "orders" in caught.value.message
    assert caught.value.trace_id


async def test_a_token_provider_is_asked_before_every_call(
    auth_proxy: Proxy, issuer: Issuer
) -> None:
    asked: list[str] = []

    async def provider() -> str:
        # The first call gets a token that cannot write, the next ones a writer's.
        groups = ["orders-readers"] if not asked else ["orders-writers"]
        token = issuer.token(f"svc-{len(asked)}", groups=groups)
        asked.append(token)
        return token

    async with PrismClient(auth_proxy.address, namespace="orders", token=provider) as client:
        with pytest.raises(PermissionDenied):
            await client.keyvalue.set("rotated", b"v")
        await client.keyvalue.set("rotated", b"v")
        assert await client.keyvalue.get("rotated") == b"v"
    assert len(asked) == 3
