"""A server stream that is opened again when it fails with UNAVAILABLE.

Both long-lived streams of the proxy (a PubSub subscription and a registry
inbox) end with UNAVAILABLE when the proxy restarts, and an inbox also when
its pattern restarts; the client then calls again. `ResumingStream` holds
that loop once: open (waiting for the proxy's headers, which it sends once
it has attached the stream), read, and on UNAVAILABLE open again with the
client's backoff until `resume_timeout` runs out.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

import grpc

from .errors import Unavailable, error_for, from_rpc_error, trace_id_of

if TYPE_CHECKING:
    from .client import PrismClient

T = TypeVar("T")
S = TypeVar("S", bound="ResumingStream[Any]")

#: Starts the call with the given metadata.
Opener = Callable[[list[tuple[str, str]]], Any]


class ResumingStream(Generic[T]):
    """An async iterator over one server stream, resumed after UNAVAILABLE.

    Iterating ends when the proxy ends the stream cleanly; any other
    failure raises a `PrismError`. `async with` opens it (and waits until the
    proxy has attached it) and cancels it on exit.
    """

    def __init__(
        self,
        client: PrismClient,
        opener: Opener,
        convert: Callable[[Any], T],
        resume_timeout: float | None,
    ) -> None:
        if resume_timeout is not None and resume_timeout < 0:
            raise ValueError(
                f"resume_timeout must be >= 0 seconds or None, got {resume_timeout}"
            )
        self._client = client
        self._opener = opener
        self._convert = convert
        self._resume_timeout = resume_timeout
        self._call: grpc.aio.UnaryStreamCall | None = None
        self._closed = False
        #: How many times the stream was opened again after failing.
        self.resumed = 0

    async def open(self: S) -> S:
        """Opens the stream and waits until the proxy has attached it."""
        if self._call is not None:
            return self
        metadata = await self._client._metadata()
        self._call = self._opener(metadata)
        try:
            await self._call.initial_metadata()
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        if self._call.done():
            code = await self._call.code()
            if code != grpc.StatusCode.OK:
                trace_id = trace_id_of(await self._call.trailing_metadata())
                raise error_for(code, await self._call.details() or "", trace_id)
        return self

    async def close(self) -> None:
        """Cancels the stream (the proxy detaches it)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def _resume(self, failure: Unavailable) -> None:
        """Opens the stream again with backoff until it opens or
        `resume_timeout` has passed (then `failure` is raised)."""
        if self._resume_timeout is None or self._closed:
            raise failure
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._resume_timeout
        retry = 0
        while True:
            self._call = None
            try:
                await self.open()
                self.resumed += 1
                return
            except Unavailable:
                wait = self._client.retry.delay(retry, random.random())
                if self._closed or loop.time() + wait >= deadline:
                    raise failure from None
                retry += 1
                await asyncio.sleep(wait)

    async def __aenter__(self: S) -> S:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def __aiter__(self: S) -> S:
        return self

    async def __anext__(self) -> T:
        await self.open()
        while True:
            assert self._call is not None
            try:
                item = await self._call.read()
                break
            except grpc.aio.AioRpcError as error:
                failure = from_rpc_error(error)
            if not isinstance(failure, Unavailable):
                raise failure
            await self._resume(failure)
        if item is grpc.aio.EOF:
            raise StopAsyncIteration
        return self._convert(item)
