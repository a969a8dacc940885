"""RFC-018 POC 5 through a proxy with auth on, trusting the real OpenID
provider the tests start: the client sends its bearer token (a string or a
provider asked per call); requests without one, or with one that has no
right in the namespace, are refused per namespace with a trace id."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import pytest

from oidc import READER, WRITER, OidcProvider, auth_config, start_oidc
from prism_client import PermissionDenied, PrismClient, Unauthenticated
from proxy import Proxy, start_proxy


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    provider = start_oidc()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def auth_proxy(oidc: OidcProvider) -> Iterator[Proxy]:
    proxy = start_proxy(auth_config(oidc))
    try:
        token = oidc.client_credentials(READER)
        proxy.wait_serving("orders", metadata=(("authorization", f"Bearer {token}"),))
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
async def writer(auth_proxy: Proxy, oidc: OidcProvider) -> AsyncIterator[PrismClient]:
    token = oidc.client_credentials(WRITER)
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


async def test_a_reader_cannot_write(auth_proxy: Proxy, oidc: OidcProvider) -> None:
    token = oidc.client_credentials(READER)
    async with PrismClient(auth_proxy.address, namespace="orders", token=token) as reader:
        with pytest.raises(PermissionDenied) as caught:
            await reader.keyvalue.set("auth-k", b"nope")
        with pytest.raises(Exception) as read:
            await reader.keyvalue.get("never-set")
    assert "orders" in caught.value.message
    assert caught.value.trace_id
    assert not isinstance(read.value, PermissionDenied), "a reader may read"


async def test_unauthorised_requests_are_blocked_per_namespace(
    auth_proxy: Proxy, writer: PrismClient
) -> None:
    # The same caller and connection: allowed in `orders`, refused in `billing`.
    await writer.keyvalue.set("tenant", b"orders")
    billing = writer.namespace("billing")
    with pytest.raises(PermissionDenied) as refused:
        await billing.keyvalue.get("tenant")
    assert "billing" in refused.value.message
    assert refused.value.trace_id
    with pytest.raises(PermissionDenied):
        await billing.keyvalue.set("tenant", b"billing")
    assert await writer.keyvalue.get("tenant") == b"orders"

    # No token, or one the proxy cannot verify: refused before any namespace rule.
    for token in (None, "not-a-jwt"):
        async with PrismClient(auth_proxy.address, namespace="billing", token=token) as other:
            with pytest.raises(Unauthenticated) as caught:
                await other.keyvalue.get("tenant")
            assert caught.value.trace_id


async def test_a_token_provider_is_asked_before_every_call(
    auth_proxy: Proxy, oidc: OidcProvider
) -> None:
    asked: list[str] = []

    async def provider() -> str:
        # The first call gets a token that cannot write, the next ones a writer's.
        token = oidc.client_credentials(READER if not asked else WRITER)
        asked.append(token)
        return token

    async with PrismClient(auth_proxy.address, namespace="orders", token=provider) as client:
        with pytest.raises(PermissionDenied):
            await client.keyvalue.set("rotated", b"v")
        await client.keyvalue.set("rotated", b"v")
        assert await client.keyvalue.get("rotated") == b"v"
    assert len(asked) == 3
