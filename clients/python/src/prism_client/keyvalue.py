"""`client.keyvalue`: the KeyValue pattern of the client's namespace.

Set, Get, Delete, Exists and Scan are retried on UNAVAILABLE: each leaves the
store the same however often it runs. (A Delete retried after the first try
did delete reports `False`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator

from ._stubs import keyvalue_pb2 as pb
from ._stubs import keyvalue_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from .client import PrismClient


class KeyValue:
    """`client.keyvalue`: set, get, delete, test and scan the namespace's keys."""

    def __init__(self, client: PrismClient) -> None:
        self._client = client
        self._stub = pb_grpc.KeyValueStub(client._channel)  # type: ignore[no-untyped-call]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Stores `value` under `key`; `ttl` in seconds (rounded up), or never expires."""
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"value must be bytes, got {type(value).__name__}")
        ttl_seconds = 0
        if ttl is not None:
            if ttl <= 0:
                raise ValueError(f"ttl must be positive seconds or None, got {ttl}")
            ttl_seconds = max(1, int(-(-ttl // 1)))
        await self._client._unary(
            self._stub.Set,
            pb.SetRequest(key=key, value=value, ttl_seconds=ttl_seconds),
            idempotent=True,
        )

    async def get(self, key: str) -> bytes:
        """The value of `key`; raises `NotFound` when it is missing or expired."""
        response = await self._client._unary(
            self._stub.Get, pb.GetRequest(key=key), idempotent=True
        )
        return bytes(response.value)

    async def delete(self, key: str) -> bool:
        """Removes `key`; `False` when it was not there."""
        response = await self._client._unary(
            self._stub.Delete, pb.DeleteRequest(key=key), idempotent=True
        )
        return bool(response.deleted)

    async def exists(self, key: str) -> bool:
        """Whether `key` is set (and not expired)."""
        response = await self._client._unary(
            self._stub.Exists, pb.ExistsRequest(key=key), idempotent=True
        )
        return bool(response.exists)

    async def scan(self, prefix: str = "", *, page_size: int = 0) -> AsyncIterator[str]:
        """Every key starting with `prefix`, fetching page after page as the
        iteration goes (`page_size` 0: the server's default)."""
        cursor = ""
        while True:
            response = await self._client._unary(
                self._stub.Scan,
                pb.ScanRequest(prefix=prefix, limit=page_size, cursor=cursor),
                idempotent=True,
            )
            for key in response.keys:
                yield key
            cursor = response.next_cursor
            if not cursor:
                return
