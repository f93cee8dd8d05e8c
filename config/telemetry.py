"""OpenTelemetry: traces exported over OTLP/HTTP when the standard ``OTEL_*`` variables ask.

Set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and every
process of the platform (web, workers) sets up a tracer provider at start; the SDK itself
reads the rest of the standard variables: ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``. Unset, no
provider is set up: the API's tracer stays a no-op, the runtime's hooks return before doing
anything (``enabled()``), and nothing is sent anywhere.

Instrumentations, chosen for what they add to a run's trace and for what they cost:
- Django: the API request that started a run is the trace's root (its span is the parent
  of the run's ``invoke_agent`` span). Health and metrics probes are left out. The ASGI
  middleware does the same for the /mcp/ door, which is served beside Django (config/asgi.py).
- Celery: not used. Its header propagation would tie a task to the request that queued it,
  but a run is resumed by the beat tick, by another worker after a crash or after a person's
  decision, none of which carries those headers; the trace context stored on the execution
  does, so every resume joins the run's trace (executions/telemetry.py).
- httpx: not used. The model calls already have a ``chat`` span each, and an instrumented
  httpx would add a root trace per webhook delivery, MCP sync or probe outside any run, and
  send a ``traceparent`` header to every tenant-supplied URL.
- psycopg: not used. A run makes a handful of small queries per step; a span per query
  outside runs (the tick, every 5 s) would be a trace each.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

logger = logging.getLogger(__name__)

# Probes answered many times a minute: a span each would drown the runs' traces.
DEFAULT_EXCLUDED_URLS = "api/v1/health/,metrics"

_provider: TracerProvider | None = None
# (trace_id, span_id) the next span must have: a run's ``invoke_agent`` span is created
# once, when the run ends, with the ids its children (written by other workers, maybe
# before a crash) already name as their parent.
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("otel_forced_ids", default=None)


class _Ids(RandomIdGenerator):
    def generate_span_id(self) -> int:
        forced = _forced_ids.get()
        return forced[1] if forced else super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced_ids.get()
        return forced[0] if forced else super().generate_trace_id()


@contextmanager
def span_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """Spans started inside get these ids (the trace id only when they have no parent)."""
    token = _forced_ids.set((trace_id, span_id))
    try:
        yield
    finally:
        _forced_ids.reset(token)


def configured() -> bool:
    """True when the environment asks for traces to be exported."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    """True in a process whose tracer provider is set up (cheap: read on every step)."""
    return _provider is not None


def provider() -> TracerProvider | None:
    return _provider


def setup() -> bool:
    """Set up tracing for this process when configured; idempotent. Call before Django
    loads its middleware (an AppConfig's ready does)."""
    global _provider
    if _provider is not None or not configured():
        return _provider is not None
    # The exporter and instrumentation are imported only where traces are wanted.
    # Resource.create() (inside TracerProvider) reads OTEL_SERVICE_NAME and
    # OTEL_RESOURCE_ATTRIBUTES; the sampler comes from OTEL_TRACES_SAMPLER; the exporter
    # reads the endpoint, headers, timeout and compression variables.
    tracer_provider = TracerProvider(id_generator=_Ids())
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    _provider = tracer_provider
    os.environ.setdefault("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    DjangoInstrumentor().instrument(tracer_provider=tracer_provider)
    logger.info("OpenTelemetry: exporting traces over OTLP/HTTP")
    return True


def asgi_traced(app: Any) -> Any:
    """``app`` with a server span per request when tracing is on: for ASGI apps served beside
    Django (the /mcp/ door), whose requests Django's instrumentation does not see."""
    if _provider is None:
        return app

    return OpenTelemetryMiddleware(app, tracer_provider=_provider)


def flush(timeout_millis: int = 5000) -> None:
    """Send what is buffered (a worker process about to exit)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)
