"""OpenTelemetry tracing (README "Observability"), off unless `OFFRAMP_TRACING=otlp`.

On: spans go to an OTLP/HTTP endpoint configured the standard way (`OTEL_EXPORTER_OTLP_ENDPOINT`
or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`; the
endpoint defaults to http://localhost:4318). Temporal's `TracingInterceptor` on the client (and so
on every worker built from it) traces starts, signals, queries and updates, workflow runs and
their activity and child-workflow starts, and activity runs; the httpx instrumentation traces
provider calls and the aiohttp instrumentation the chain's JSON-RPC calls.

Never a secret in a span: an RPC URL often embeds a key, so a JSON-RPC span names only the
scheme, host and port, and every attribute passes the log redactor (offramp.logs); httpx spans
carry no headers (the Kado widget id is a header).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from temporalio.client import Interceptor

from offramp.config import ENV_PREFIX, ConfigError

if TYPE_CHECKING:  # the SDK is imported only when tracing is on (it is slow to import)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

TRACING_VAR = f"{ENV_PREFIX}TRACING"
TracingMode = Literal["off", "otlp"]
DEFAULT_SERVICE_NAME = "offramp"

log = logging.getLogger("offramp.tracing")
_lock = threading.Lock()
_provider: TracerProvider | None = None


def tracing_mode(env: Mapping[str, str] | None = None) -> TracingMode:
    env = os.environ if env is None else env
    mode = env.get(TRACING_VAR, "").strip().lower() or "off"
    if mode not in ("off", "otlp"):
        raise ConfigError(f"invalid configuration: {TRACING_VAR}: {mode!r} is not off or otlp")
    return "otlp" if mode == "otlp" else "off"


def configure_tracing(
    service_name: str = DEFAULT_SERVICE_NAME,
    env: Mapping[str, str] | None = None,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Set up the process's tracer provider once (later calls return the same one); None when
    tracing is off. `exporter` replaces the OTLP exporter (tests)."""
    global _provider
    env = os.environ if env is None else env
    if exporter is None and tracing_mode(env) == "off":
        return None
    with _lock:
        if _provider is not None:
            return _provider
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from offramp.observability.span_redaction import RedactingExporter

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # reads the standard OTEL_EXPORTER_OTLP_* variables
        name = env.get("OTEL_SERVICE_NAME") or service_name
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
        provider.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter)))
        trace.set_tracer_provider(provider)
        _instrument_http()
        _provider = provider
        log.info("tracing on: OTLP spans as service %s", name)
        return provider


def tracing_interceptors(env: Mapping[str, str] | None = None) -> list[Interceptor]:
    """The client interceptors for tracing (none when off); sets the provider up on first use."""
    if configure_tracing(env=env) is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    # Workflow spans even for orders started by a backend that does not trace.
    return [TracingInterceptor(always_create_workflow_spans=True)]


def shutdown_tracing() -> None:
    """Flush and stop the exporter (the worker leaves with os._exit: no atexit hook runs)."""
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


def _rpc_url(url: Any) -> str:
    """A JSON-RPC URL as a span may show it: scheme, host and port only (paths and queries of
    RPC URLs often are keys)."""
    port = f":{url.port}" if url.port and not url.is_default_port() else ""
    return f"{url.scheme}://{url.host}{port}"


def _instrument_http() -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()
    AioHttpClientInstrumentor().instrument(url_filter=_rpc_url)
