"""Async Python client for the Prism data-access gateway.

    async with PrismClient("localhost:8980") as client:
        await client.keyvalue.set("user:1", b"alice")
        print(await client.keyvalue.get("user:1"))
"""

from .client import PrismClient, TokenProvider
from .errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PrismError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from .keyvalue import KeyValue
from .pubsub import Message, PubSub, Subscription
from .registry import (
    Delivery,
    DeliveryStatus,
    Enumeration,
    Identity,
    Inbox,
    InboxMessage,
    MulticastResult,
    Registration,
    Registry,
)
from .retry import NO_RETRY, RetryPolicy

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "Delivery",
    "DeliveryStatus",
    "Enumeration",
    "FailedPrecondition",
    "Identity",
    "Inbox",
    "InboxMessage",
    "Internal",
    "InvalidArgument",
    "KeyValue",
    "Message",
    "MulticastResult",
    "NO_RETRY",
    "NotFound",
    "PermissionDenied",
    "PrismClient",
    "PrismError",
    "PubSub",
    "Registration",
    "Registry",
    "ResourceExhausted",
    "RetryPolicy",
    "Subscription",
    "TokenProvider",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]
