"""Errors raised by the client, one class per gRPC status code.

Every error carries the proxy's message, the status code and the
`x-prism-trace-id` the proxy answered with, so a failed call can be found in
the trace backend. Catch `PrismError` for all of them.
"""

from __future__ import annotations

import grpc

TRACE_ID_HEADER = "x-prism-trace-id"


class PrismError(Exception):
    """A call the proxy (or the connection to it) answered with an error."""

    def __init__(
        self, message: str, *, code: grpc.StatusCode, trace_id: str | None = None
    ) -> None:
        self.message = message
        self.code = code
        self.trace_id = trace_id
        text = f"{code.name}: {message}"
        if trace_id:
            text += f" (trace id {trace_id})"
        super().__init__(text)


class InvalidArgument(PrismError):
    """The request was refused as malformed (the message names the field)."""


class NotFound(PrismError):
    """The key, or the namespace, does not exist."""


class AlreadyExists(PrismError):
    """The thing to create exists already."""


class PermissionDenied(PrismError):
    """The caller is known but lacks the right for this namespace."""


class Unauthenticated(PrismError):
    """No token, or one the proxy does not accept."""


class ResourceExhausted(PrismError):
    """A limit was reached (the message names it): too many keys, identities,
    open streams, or bytes in flight."""


class FailedPrecondition(PrismError):
    """The namespace is not in a state to serve this call."""


class Aborted(PrismError):
    """The call was abandoned part-way (e.g. a conflict); it may be tried again."""


class Unimplemented(PrismError):
    """The namespace's pattern does not serve this call (e.g. KeyValue on a
    PubSub namespace)."""


class Unavailable(PrismError):
    """The proxy or its pattern cannot serve now; idempotent calls retry this."""


class DeadlineExceeded(PrismError):
    """The call's deadline (the client's `timeout`) passed before an answer."""


class Cancelled(PrismError):
    """The call was cancelled before it finished."""


class Internal(PrismError):
    """The proxy or its pattern failed; the trace id finds out why."""


_BY_CODE: dict[grpc.StatusCode, type[PrismError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
}


def error_for(
    code: grpc.StatusCode, message: str, trace_id: str | None = None
) -> PrismError:
    """The exception for `code`; codes without a class of their own get `PrismError`."""
    return _BY_CODE.get(code, PrismError)(message, code=code, trace_id=trace_id)


def trace_id_of(metadata: object) -> str | None:
    """The `x-prism-trace-id` in gRPC metadata (headers or trailers), if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == TRACE_ID_HEADER:
            return value if isinstance(value, str) else value.decode()
    return None


def from_rpc_error(error: grpc.aio.AioRpcError) -> PrismError:
    """Maps a failed call, taking the trace id from its headers or trailers.

    A response that is only trailers (most errors) carries the trace id
    there; a stream that failed after it started has it in its headers.
    """
    trace_id = trace_id_of(error.trailing_metadata()) or trace_id_of(
        error.initial_metadata()
    )
    return error_for(error.code(), error.details() or "", trace_id)
