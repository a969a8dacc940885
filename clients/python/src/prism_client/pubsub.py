"""`client.pubsub`: the PubSub pattern of the client's namespace.

Publish, PublishBatch and Ack are not retried: a retry after a lost answer
could deliver a message twice. Unsubscribe is (ending a subscription twice
ends it once).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

import grpc

from ._stubs import pubsub_pb2 as pb
from ._stubs import pubsub_pb2_grpc as pb_grpc
from .errors import Unavailable, error_for, from_rpc_error, trace_id_of

if TYPE_CHECKING:
    from .client import PrismClient


@dataclass(frozen=True)
class Message:
    """One delivered message."""

    topic: str
    payload: bytes
    message_id: str
    subscriber_id: str
    timestamp_ms: int
    delivery_attempt: int
    dropped_before: int
    traceparent: str
    metadata: Mapping[str, str] = field(default_factory=dict)


class PubSub:
    def __init__(self, client: PrismClient) -> None:
        self._client = client
        self._stub = pb_grpc.PubSubStub(client._channel)  # type: ignore[no-untyped-call]

    async def publish(
        self, topic: str, payload: bytes, metadata: Mapping[str, str] | None = None
    ) -> str:
        """Publishes one message; returns its id."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        response = await self._client._unary(
            self._stub.Publish,
            pb.PublishRequest(topic=topic, payload=payload, metadata=metadata or {}),
            idempotent=False,
        )
        return str(response.message_id)

    async def publish_batch(
        self, messages: Iterable[tuple[str, bytes] | tuple[str, bytes, Mapping[str, str]]]
    ) -> list[str]:
        """Publishes `(topic, payload[, metadata])` messages in order; their ids."""
        requests = [
            pb.PublishRequest(
                topic=m[0], payload=m[1], metadata=m[2] if len(m) > 2 else {}
            )
            for m in messages
        ]
        response = await self._client._unary(
            self._stub.PublishBatch,
            pb.PublishBatchRequest(messages=requests),
            idempotent=False,
        )
        return list(response.message_ids)

    def subscribe(
        self,
        topic: str,
        *,
        subscriber_id: str = "",
        manual_ack: bool = False,
        resume_timeout: float | None = 30.0,
    ) -> Subscription:
        """The messages on `topic` (wildcards allowed) as an async iterator.

        `async with client.pubsub.subscribe(t) as sub:` returns once the
        proxy has opened the subscription, so nothing published after it is
        missed; `async for m in client.pubsub.subscribe(t)` opens it on the
        first iteration.

        A stream that fails with UNAVAILABLE (the proxy restarting, or its
        pattern not coming back in time) is opened again, with backoff, for
        up to `resume_timeout` seconds (`None`: never). On an at-most-once
        backend, messages published while it was down are not delivered; a
        durable subscriber (`subscriber_id` on JetStream) keeps its place.
        """
        if resume_timeout is not None and resume_timeout < 0:
            raise ValueError(f"resume_timeout must be >= 0 seconds or None, got {resume_timeout}")
        return Subscription(
            self._client,
            self._stub,
            pb.SubscribeRequest(
                topic=topic, subscriber_id=subscriber_id, manual_ack=manual_ack
            ),
            resume_timeout,
        )

    async def unsubscribe(self, topic: str, subscriber_id: str) -> bool:
        """Ends every stream of `subscriber_id` on `topic`; `False` when none was open."""
        response = await self._client._unary(
            self._stub.Unsubscribe,
            pb.UnsubscribeRequest(topic=topic, subscriber_id=subscriber_id),
            idempotent=True,
        )
        return bool(response.unsubscribed)

    async def ack(self, topic: str, subscriber_id: str, message_ids: Iterable[str]) -> int:
        """Acknowledges messages of a `manual_ack` subscription; how many were acked."""
        response = await self._client._unary(
            self._stub.Ack,
            pb.AckRequest(
                topic=topic, subscriber_id=subscriber_id, message_ids=list(message_ids)
            ),
            idempotent=False,
        )
        return int(response.acked)


class Subscription:
    """A Subscribe stream. Iterating ends when the proxy ends the stream
    cleanly (e.g. after `unsubscribe`); a failure raises a `PrismError`."""

    def __init__(
        self,
        client: PrismClient,
        stub: pb_grpc.PubSubStub,
        request: pb.SubscribeRequest,
        resume_timeout: float | None = None,
    ) -> None:
        self._client = client
        self._stub = stub
        self._request = request
        self._resume_timeout = resume_timeout
        self._call: grpc.aio.UnaryStreamCall | None = None
        self._closed = False
        #: How many times the stream was opened again after failing.
        self.resumed = 0

    async def open(self) -> Subscription:
        """Opens the stream and waits until the proxy has subscribed."""
        if self._call is not None:
            return self
        metadata = await self._client._metadata()
        self._call = self._stub.Subscribe(self._request, metadata=metadata)
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
        """Cancels the stream, which unsubscribes."""
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

    async def __aenter__(self) -> Subscription:
        return await self.open()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        await self.open()
        while True:
            assert self._call is not None
            try:
                m = await self._call.read()
                break
            except grpc.aio.AioRpcError as error:
                failure = from_rpc_error(error)
            if not isinstance(failure, Unavailable):
                raise failure
            await self._resume(failure)
        if m is grpc.aio.EOF:
            raise StopAsyncIteration
        return Message(
            topic=m.topic,
            payload=bytes(m.payload),
            message_id=m.message_id,
            subscriber_id=m.subscriber_id,
            timestamp_ms=m.timestamp_ms,
            delivery_attempt=m.delivery_attempt,
            dropped_before=m.dropped_before,
            traceparent=m.traceparent,
            metadata=dict(m.metadata),
        )
