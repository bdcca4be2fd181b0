"""OpenTelemetry set-up and trace context carried through the outbox and Kafka headers.

One trace runs HTTP request -> outbox row (its ``traceparent`` is stored with the row) ->
relay publish -> Kafka header -> consumer span, and on through any row the consumer leaves for
a later loop (notifications stores the ``traceparent`` on the queued email, so the SMTP send
span continues the sign-up's trace). Spans are exported over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; tests may pass their own span processor, also after
the provider was installed (several test modules share one process).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


def setup_telemetry(
    service_name: str,
    otlp_endpoint: str | None = None,
    extra_processors: Iterable[SpanProcessor] = (),
) -> None:
    """Install the global tracer provider once per process; later calls only add processors."""
    global _provider
    if _provider is not None:
        for processor in extra_processors:
            _provider.add_span_processor(processor)
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``), to store or send."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_headers_of(span: trace.SpanContext) -> dict[str, str]:
    """``span`` as W3C headers, for a message caused by a span that is not the current one."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(span)))
    return carrier


def context_from_headers(headers: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(headers))


def current_traceparent() -> str | None:
    """The current span as a W3C ``traceparent`` value, to store with a row; None outside one."""
    return current_trace_headers().get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context | None:
    """The context a stored ``traceparent`` continues; None (a new trace) when there is none."""
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})


def context_from_kafka_headers(headers: Any) -> otel_context.Context:
    carrier = {
        key: bytes(value).decode("utf-8", "replace")
        for key, value in headers or ()
        if key in ("traceparent", "tracestate") and value is not None
    }
    return propagate.extract(carrier)
