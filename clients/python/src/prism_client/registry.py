"""`client.registry`: the multicast registry of the client's namespace.

Identities (devices, workers) are registered with metadata and a TTL,
found by MongoDB-style filters over that metadata, sent one message at a
time by filter, and read their messages from an inbox stream.

Register (the heartbeat), Unregister, Get and Enumerate pages are retried on
UNAVAILABLE: running them again leaves the registry the same. Multicast is
not: a retry after a lost answer would send the message twice.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Generator, Mapping

from ._stream import ResumingStream
from ._struct import from_struct, to_struct
from ._stubs import registry_pb2 as pb
from ._stubs import registry_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from .client import PrismClient

#: What `multicast` sends: bytes as they are, a str as UTF-8, anything else
#: (a dict, a list) as compact JSON.
Payload = bytes | str | Mapping[str, Any] | list[Any]


def _ms_or_none(ms: int) -> int | None:
    return ms or None


def _seconds(ttl: float | None, what: str) -> int:
    """Whole seconds for the proxy, rounded up; 0 for None (never)."""
    if ttl is None:
        return 0
    if ttl <= 0:
        raise ValueError(f"{what} must be positive seconds or None, got {ttl}")
    return max(1, int(-(-ttl // 1)))


def encode_payload(message: Payload) -> bytes:
    """The bytes `multicast` sends for `message`."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    if isinstance(message, str):
        return message.encode()
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class Registration:
    """What `register` did."""

    #: True when the identity was not registered before.
    created: bool
    #: Unix epoch milliseconds.
    registered_at_ms: int
    #: Unix epoch milliseconds; None when it never expires.
    expires_at_ms: int | None


@dataclass(frozen=True)
class Identity:
    """A registered identity."""

    identity: str
    metadata: dict[str, Any]
    #: When it was last registered, Unix epoch milliseconds.
    registered_at_ms: int
    #: Unix epoch milliseconds; None when it never expires.
    expires_at_ms: int | None


def _identity(i: pb.Identity) -> Identity:
    return Identity(
        identity=i.identity,
        metadata=from_struct(i.metadata),
        registered_at_ms=i.registered_at_ms,
        expires_at_ms=_ms_or_none(i.expires_at_ms),
    )


class DeliveryStatus(enum.Enum):
    """What became of a multicast message for one identity."""

    #: Handed to a live receiver, or durably stored for one.
    DELIVERED = pb.DELIVERED
    #: Stored for an identity with no receiver; it gets it on its next `receive`.
    PENDING = pb.PENDING
    #: Nobody holds it; `Delivery.error` says why.
    FAILED = pb.FAILED
    #: The fan-out did not reach it within the multicast's timeout.
    TIMEOUT = pb.TIMEOUT


@dataclass(frozen=True)
class Delivery:
    """One target of a multicast."""

    identity: str
    status: DeliveryStatus
    #: Why, for FAILED and TIMEOUT.
    error: str = ""


@dataclass(frozen=True)
class MulticastResult:
    """What a multicast reached, in counts and per identity."""

    multicast_id: str
    #: Identities the filter selected.
    target_count: int
    delivered_count: int
    pending_count: int
    #: FAILED and TIMEOUT together.
    failed_count: int
    #: One per target, in identity order.
    results: list[Delivery] = field(default_factory=list)

    def status(self, identity: str) -> DeliveryStatus | None:
        """The status for `identity`; None when it was not a target."""
        return next((d.status for d in self.results if d.identity == identity), None)


@dataclass(frozen=True)
class InboxMessage:
    """One message `receive` delivered."""

    message_id: str
    multicast_id: str
    payload: bytes
    metadata: Mapping[str, str]
    #: When the multicast was sent, Unix epoch milliseconds.
    sent_at_ms: int
    traceparent: str

    def json(self) -> Any:
        """The payload decoded as JSON (what a dict `message` was sent as)."""
        return json.loads(self.payload)


def _inbox_message(m: pb.InboxMessage) -> InboxMessage:
    return InboxMessage(
        message_id=m.message_id,
        multicast_id=m.multicast_id,
        payload=bytes(m.payload),
        metadata=dict(m.metadata),
        sent_at_ms=m.sent_at_ms,
        traceparent=m.traceparent,
    )


class Inbox(ResumingStream[InboxMessage]):
    """An identity's Receive stream of `InboxMessage`s, beginning with what
    is pending for it. UNAVAILABLE (the proxy or the pattern restarting)
    opens it again; see `Registry.receive`."""


class Enumeration:
    """The identities a filter selects: `await` it for a list, or
    `async for` over it to fetch page after page as the iteration goes.
    `total_count` is set once the first page has been read."""

    def __init__(self, registry: Registry, request: pb.EnumerateRequest) -> None:
        self._registry = registry
        self._request = request
        #: How many identities the filter selects, over every page.
        self.total_count: int | None = None

    async def __aiter__(self) -> AsyncIterator[Identity]:
        cursor = ""
        while True:
            request = pb.EnumerateRequest()
            request.CopyFrom(self._request)
            request.cursor = cursor
            response = await self._registry._client._unary(
                self._registry._stub.Enumerate, request, idempotent=True
            )
            self.total_count = int(response.total_count)
            for identity in response.identities:
                yield _identity(identity)
            cursor = response.next_cursor
            if not cursor:
                return

    async def collect(self) -> list[Identity]:
        """Every selected identity, all pages read."""
        return [identity async for identity in self]

    def __await__(self) -> Generator[Any, None, list[Identity]]:
        return self.collect().__await__()


class Registry:
    """`client.registry`: register identities, find them by filter,
    multicast to them and receive what is sent to one."""

    def __init__(self, client: PrismClient) -> None:
        self._client = client
        self._stub = pb_grpc.MulticastRegistryStub(client._channel)  # type: ignore[no-untyped-call]

    async def register(
        self,
        identity: str,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> Registration:
        """Registers `identity` with `metadata`, expiring `ttl` seconds
        (rounded up) from now unless registered again (None: never).
        Registering again replaces the metadata and restarts the TTL: it is
        the heartbeat."""
        request = pb.RegisterRequest(
            identity=identity,
            metadata=to_struct(metadata or {}, "metadata"),
            ttl_seconds=_seconds(ttl, "ttl"),
        )
        response = await self._client._unary(self._stub.Register, request, idempotent=True)
        return Registration(
            created=bool(response.created),
            registered_at_ms=response.registered_at_ms,
            expires_at_ms=_ms_or_none(response.expires_at_ms),
        )

    async def unregister(self, identity: str) -> bool:
        """Forgets `identity` and drops its pending messages; False when it
        was not registered."""
        response = await self._client._unary(
            self._stub.Unregister, pb.UnregisterRequest(identity=identity), idempotent=True
        )
        return bool(response.existed)

    async def get(self, identity: str) -> Identity:
        """The registered `identity`; raises `NotFound` when it is not
        registered or has expired."""
        response = await self._client._unary(
            self._stub.Get, pb.GetRequest(identity=identity), idempotent=True
        )
        return _identity(response.identity)

    def enumerate(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        include_metadata: bool = True,
        page_size: int = 0,
    ) -> Enumeration:
        """The identities `filter` selects (None or {}: all), in identity
        order: `devices = await client.registry.enumerate(filter={...})`, or
        `async for device in client.registry.enumerate(...)` page by page
        (`page_size` 0: the proxy's default of 100).

        Filters are MongoDB-style: `{"type": "sensor"}`,
        `{"floor": {"$gte": 2}}`, `$in`, `$prefix`, `$or`, dotted paths; a bad
        one raises `InvalidArgument` naming the place and the problem."""
        if page_size < 0:
            raise ValueError(f"page_size must be >= 0, got {page_size}")
        request = pb.EnumerateRequest(
            filter=to_struct(filter, "filter"),
            limit=page_size,
            include_metadata=include_metadata,
        )
        return Enumeration(self, request)

    async def multicast(
        self,
        filter: Mapping[str, Any] | None,
        message: Payload,
        *,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> MulticastResult:
        """Sends `message` to every identity `filter` selects (None or {}:
        all) and reports what became of it for each. `timeout` bounds the
        fan-out in seconds (None: the proxy's 5 s; at most 60); the call's
        deadline is stretched to cover it. Not retried."""
        timeout_ms = 0
        call_timeout = None
        if timeout is not None:
            if not 0 < timeout <= 60:
                raise ValueError(f"timeout must be in (0, 60] seconds or None, got {timeout}")
            timeout_ms = max(1, int(timeout * 1000))
            call_timeout = max(self._client.timeout, timeout + 5.0)
        request = pb.MulticastRequest(
            filter=to_struct(filter, "filter"),
            payload=encode_payload(message),
            metadata=dict(metadata or {}),
            timeout_ms=timeout_ms,
        )
        response = await self._client._unary(
            self._stub.Multicast, request, idempotent=False, timeout=call_timeout
        )
        return MulticastResult(
            multicast_id=response.multicast_id,
            target_count=response.target_count,
            delivered_count=response.delivered_count,
            pending_count=response.pending_count,
            failed_count=response.failed_count,
            results=[
                Delivery(r.identity, DeliveryStatus(r.status), r.error) for r in response.results
            ],
        )

    def receive(self, identity: str, *, resume_timeout: float | None = 30.0) -> Inbox:
        """What is multicast to `identity`, as an async iterator, beginning
        with what is pending for it.

        `async with client.registry.receive(i) as inbox:` returns once the
        proxy has attached the receiver, so a multicast after it is
        delivered to it. A stream that fails with UNAVAILABLE (the proxy or
        its pattern restarting) is opened again with backoff for up to
        `resume_timeout` seconds (None: raise at once); on slots that keep
        messages, what was sent meanwhile is pending and arrives then. Raises
        `NotFound` when the identity is not registered."""
        request = pb.ReceiveRequest(identity=identity)
        return Inbox(
            self._client,
            lambda metadata: self._stub.Receive(request, metadata=metadata),
            _inbox_message,
            resume_timeout,
        )
