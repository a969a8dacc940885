"""`PrismClient`: one channel to a Prism proxy, the namespace and credentials
every call carries, and the deadline and retry policy it runs under."""

from __future__ import annotations

import inspect
from typing import Awaitable, Callable, TypeVar, Union

import grpc

from .errors import from_rpc_error
from .retry import RetryPolicy, call_with_retry
from .tracing import trace_headers

T = TypeVar("T")

NAMESPACE_HEADER = "x-prism-namespace"

#: A bearer token, or something that returns the current one (sync or async),
#: asked before every call so a refreshed token is picked up: a function, or
#: `prism_client.auth.OidcTokenProvider` (the login's cached token, refreshed
#: before it expires).
TokenProvider = Union[str, Callable[[], Union[str, Awaitable[str]]]]


class PrismClient:
    """A client for one proxy and one namespace.

    `address` is `host:port`. `tls=None` connects in plaintext;
    `tls=grpc.ssl_channel_credentials(...)` connects over TLS. `timeout` is
    the deadline in seconds of each call, retries included (a subscription's
    stream has none). `token` is a bearer token, a function (sync or async)
    returning the current one, or an `OidcTokenProvider`; it is asked before
    every call. The patterns are `client.keyvalue`, `client.pubsub` and
    `client.registry`; `client.namespace(name)` speaks to another namespace
    on the same connection. Use it as an async context manager, or call
    `close()`.
    """

    def __init__(
        self,
        address: str,
        *,
        namespace: str = "default",
        token: TokenProvider | None = None,
        tls: grpc.ChannelCredentials | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        _channel: grpc.aio.Channel | None = None,
    ) -> None:
        if not namespace:
            raise ValueError("namespace must not be empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout}")
        self.address = address
        self.namespace_name = namespace
        self.timeout = timeout
        self.retry = retry
        self._token = token
        self._tls = tls
        self._owns_channel = _channel is None
        if _channel is None:
            _channel = (
                grpc.aio.secure_channel(address, tls)
                if tls is not None
                else grpc.aio.insecure_channel(address)
            )
        self._channel = _channel
        from .keyvalue import KeyValue
        from .pubsub import PubSub
        from .registry import Registry

        self.keyvalue = KeyValue(self)
        self.pubsub = PubSub(self)
        self.registry = Registry(self)

    def namespace(self, name: str) -> PrismClient:
        """The same connection and credentials, speaking to namespace `name`.
        Closing it does not close the connection; closing this client does."""
        return PrismClient(
            self.address,
            namespace=name,
            token=self._token,
            tls=self._tls,
            timeout=self.timeout,
            retry=self.retry,
            _channel=self._channel,
        )

    async def close(self) -> None:
        """Closes the connection, unless it belongs to the client this one
        was made from by `namespace()`."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> PrismClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _metadata(self) -> list[tuple[str, str]]:
        metadata = [(NAMESPACE_HEADER, self.namespace_name), *trace_headers()]
        token: str | Awaitable[str] | None
        token = self._token() if callable(self._token) else self._token
        if inspect.isawaitable(token):
            token = await token
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        return metadata

    async def _unary(
        self,
        method: Callable[..., Awaitable[T]],
        request: object,
        *,
        idempotent: bool,
        timeout: float | None = None,
    ) -> T:
        """One unary call with this client's metadata, deadline (`timeout`,
        else the client's) and retries, its failure mapped to a `PrismError`."""

        async def attempt(remaining: float) -> T:
            metadata = await self._metadata()
            try:
                return await method(request, timeout=remaining, metadata=metadata)
            except grpc.aio.AioRpcError as error:
                raise from_rpc_error(error) from None

        return await call_with_retry(
            attempt,
            policy=self.retry,
            timeout=timeout or self.timeout,
            idempotent=idempotent,
        )
