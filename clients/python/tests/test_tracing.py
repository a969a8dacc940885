"""With OpenTelemetry installed, a call made inside the app's span carries
its `traceparent`: the proxy continues that trace, so the trace id of a
failed call is the app's own."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from prism_client import NotFound, PrismClient

trace.set_tracer_provider(TracerProvider())
tracer = trace.get_tracer("prism-client-tests")


async def test_the_proxy_continues_the_callers_trace(client: PrismClient) -> None:
    with tracer.start_as_current_span("app work") as span:
        with pytest.raises(NotFound) as caught:
            await client.keyvalue.get("traced-missing-key")
    assert caught.value.trace_id == format(span.get_span_context().trace_id, "032x")


async def test_outside_a_span_the_proxy_starts_its_own_trace(client: PrismClient) -> None:
    with pytest.raises(NotFound) as first:
        await client.keyvalue.get("untraced-1")
    with pytest.raises(NotFound) as second:
        await client.keyvalue.get("untraced-2")
    assert first.value.trace_id and second.value.trace_id
    assert first.value.trace_id != second.value.trace_id
