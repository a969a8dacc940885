"""The caller's trace context, sent with every call when OpenTelemetry is
installed, so an app's own trace continues through the proxy (which answers
with the same trace id in `x-prism-trace-id`). Without `opentelemetry-api`
nothing is sent and nothing is imported."""

from __future__ import annotations

try:
    from opentelemetry import propagate

    _HAVE_OTEL = True
except ImportError:  # the optional dependency is absent
    _HAVE_OTEL = False


def trace_headers() -> list[tuple[str, str]]:
    """`traceparent` (and `tracestate`) of the current span, if there is one."""
    if not _HAVE_OTEL:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [
        (key.lower(), value)
        for key, value in carrier.items()
        if key.lower() in ("traceparent", "tracestate")
    ]
