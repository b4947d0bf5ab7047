"""OpenTelemetry tracing, optional: without the `otel` extra (or with tracing not configured) every
function here is a cheap no-op and the server runs exactly as before.

Spans: one per RPC and HTTP route (server kind, parented to the caller's `traceparent`), one per engine
command handled by a run's driver, one per node execution. One trace per run: a run remembers the trace
context it was started in (the `executions.trace_parent` column), so every later engine and node span of
that run joins that trace, on any replica and after a restart. A call that acts on an existing run is a
span of its caller's trace; the engine command it causes is a span of the run's trace with a link back.

Tracing is configured by the standard OTEL_* environment variables: it turns on when
OTEL_TRACES_EXPORTER is `otlp` (or `console`), or when an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; OTEL_SDK_DISABLED=true turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

try:  # the `otel` extra
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.propagate import extract as otel_extract
    from opentelemetry.propagate import inject as otel_inject
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _PROPAGATOR = TraceContextTextMapPropagator()
    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised by installs without the extra
    AVAILABLE = False

_tracer: Any = None
_provider: Any = None


def available() -> bool:
    """Whether the OpenTelemetry packages are installed."""
    return AVAILABLE


def active() -> bool:
    """Whether spans are being recorded (checked first on hot paths)."""
    return _tracer is not None


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the OTEL_* environment asks for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Set up the SDK with the exporter OTEL_* asks for (OTLP over gRPC or http/protobuf after
    OTEL_EXPORTER_OTLP_PROTOCOL); answers whether tracing is now on. A provider given with
    `use_provider` first (tests) is kept."""
    env = os.environ if env is None else env
    if _tracer is not None:
        return True
    if not wanted(env):
        return False
    if not AVAILABLE:
        log.warning(
            "OTEL_* asks for traces but OpenTelemetry is not installed: pip install 'runctl-server[otel]'"
        )
        return False
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "runctl")}).merge(
        OTELResourceDetector().detect()
    )
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
        )
        if protocol.strip() == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    use_provider(provider)
    return True


def use_provider(provider: Any) -> None:
    """Record spans with this TracerProvider (tests hand one with an in-memory exporter)."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer("runctl")


def shutdown() -> None:
    """Flush what is pending and stop recording."""
    global _tracer, _provider
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.shutdown()
    _tracer = _provider = None


def extract(carrier: Mapping[str, str]) -> Any:
    """The trace context a caller sent (`traceparent`, `tracestate`), or None."""
    if _tracer is None:
        return None
    return otel_extract(carrier)


@contextlib.contextmanager
def server_span(name: str, carrier: Mapping[str, str], attributes: Mapping[str, Any]) -> Iterator[Any]:
    """A span for one incoming call, as a child of the caller's context when it sent one."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        name, context=otel_extract(carrier), kind=SpanKind.SERVER, attributes=dict(attributes)
    ) as span:
        yield span


@contextlib.contextmanager
def run_span(
    name: str,
    trace_parent: str | None,
    attributes: Mapping[str, Any],
    link_to: str | None = None,
) -> Iterator[Any]:
    """A span of a run's trace (`trace_parent`: the context the run was started in), current while the
    block runs; `link_to` (a traceparent) links the call that caused it."""
    if _tracer is None:
        yield None
        return
    parent = _context_of(trace_parent) if trace_parent else None
    links: Sequence[Any] = ()
    if link_to:
        linked = trace.get_current_span(_context_of(link_to)).get_span_context()
        if linked.is_valid:
            links = (Link(linked),)
    with _tracer.start_as_current_span(
        name, context=parent, attributes=dict(attributes), links=links
    ) as span:
        yield span


def failed(span: Any, message: str) -> None:
    """Mark a span as ended in error."""
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, message))


def set_attribute(span: Any, key: str, value: Any) -> None:
    if span is not None:
        span.set_attribute(key, value)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (to store with a run, or to hand on), or None."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def new_run_traceparent(own_trace: bool) -> str | None:
    """The trace context a new run keeps: the current one (the call that starts it), or with
    `own_trace` a new trace linked to it (each run of a batch gets its own)."""
    if _tracer is None:
        return None
    if not own_trace:
        return current_traceparent()
    current = trace.get_current_span().get_span_context()
    links = (Link(current),) if current.is_valid else ()
    span = _tracer.start_span("runctl.run", context=otel_context.Context(), links=links)
    span.end()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context to outgoing request headers (`traceparent`)."""
    if _tracer is not None:
        otel_inject(headers)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, for log lines; None outside a span."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@functools.lru_cache(maxsize=4096)
def _context_of(traceparent: str) -> Any:
    """A run's stored trace context, parsed once (every node and command span of the run needs it)."""
    return _PROPAGATOR.extract({"traceparent": traceparent})
