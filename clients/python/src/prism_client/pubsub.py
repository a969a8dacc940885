"""`client.pubsub`: the PubSub pattern of the client's namespace.

Publish, PublishBatch and Ack are not retried: a retry after a lost answer
could deliver a message twice. Unsubscribe is (ending a subscription twice
ends it once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

from ._stream import ResumingStream
from ._stubs import pubsub_pb2 as pb
from ._stubs import pubsub_pb2_grpc as pb_grpc

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
    """`client.pubsub`: publish to and subscribe on the namespace's topics."""

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


def _message(m: pb.Message) -> Message:
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


class Subscription(ResumingStream[Message]):
    """A Subscribe stream of `Message`s. Iterating ends when the proxy ends
    the stream cleanly (e.g. after `unsubscribe`); a failure raises a
    `PrismError`; UNAVAILABLE opens it again (see `PubSub.subscribe`)."""

    def __init__(
        self,
        client: PrismClient,
        stub: pb_grpc.PubSubStub,
        request: pb.SubscribeRequest,
        resume_timeout: float | None = None,
    ) -> None:
        super().__init__(
            client,
            lambda metadata: stub.Subscribe(request, metadata=metadata),
            _message,
            resume_timeout,
        )
