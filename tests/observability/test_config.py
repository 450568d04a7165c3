"""Observability configuration and the parts that need no server: tracing off by default, bad
values named, no secret in an exported span, metric functions safe outside Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yarl
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from offramp.config import ConfigError
from offramp.logs import REDACTED, REDACTOR
from offramp.observability import order_metrics
from offramp.observability.attention_gauge import attention_gauge_interval, attention_query
from offramp.observability.health import health_address
from offramp.observability.span_redaction import RedactingExporter
from offramp.observability.tracing import (
    _rpc_url,
    configure_tracing,
    tracing_interceptors,
    tracing_mode,
)


def test_tracing_is_off_unless_configured() -> None:
    assert tracing_mode({}) == "off"
    assert tracing_mode({"OFFRAMP_TRACING": "OTLP"}) == "otlp"
    assert configure_tracing(env={}) is None
    assert tracing_interceptors({}) == []
    with pytest.raises(ConfigError, match="OFFRAMP_TRACING: 'jaeger' is not off or otlp"):
        tracing_mode({"OFFRAMP_TRACING": "jaeger"})


def test_addresses_and_intervals_are_checked_naming_the_variable() -> None:
    assert health_address({}) is None
    assert health_address({"OFFRAMP_HEALTH_ADDRESS": "0.0.0.0:8081"}) == "0.0.0.0:8081"
    with pytest.raises(ConfigError, match="OFFRAMP_HEALTH_ADDRESS: '8081' is not host:port"):
        health_address({"OFFRAMP_HEALTH_ADDRESS": "8081"})
    assert attention_gauge_interval({}) == 60
    assert attention_gauge_interval({"OFFRAMP_METRICS_GAUGE_INTERVAL_SECONDS": "0.5"}) == 0.5
    with pytest.raises(ConfigError, match="OFFRAMP_METRICS_GAUGE_INTERVAL_SECONDS: 'soon'"):
        attention_gauge_interval({"OFFRAMP_METRICS_GAUGE_INTERVAL_SECONDS": "soon"})
    query = attention_query("offramp-sell-orders")
    assert "TaskQueue = 'offramp-sell-orders'" in query and "NeedsAttention = true" in query


def test_a_json_rpc_span_shows_only_scheme_host_and_port() -> None:
    url = yarl.URL("https://eth.example.com:8443/v2/AbCdEfGhIjKlMnOpQrStUv?key=s3cr3tvalue")
    assert _rpc_url(url) == "https://eth.example.com:8443"
    assert _rpc_url(yarl.URL("https://eth.example.com/v2/key")) == "https://eth.example.com"


def test_exported_spans_carry_no_configured_secret() -> None:
    secret = "0x" + "5e" * 32
    REDACTOR.add([secret])
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingExporter(memory)))
    with provider.get_tracer("t").start_as_current_span("RunActivity:x") as span:
        span.set_attribute("note", f"signing with {secret}")
        span.set_attribute("attempt", 2)
        span.record_exception(ValueError(f"bad key {secret}"))
    provider.shutdown()
    [exported] = memory.get_finished_spans()
    assert exported.attributes == {"note": f"signing with {REDACTED}", "attempt": 2}
    assert exported.events[0].attributes is not None
    assert secret not in str(dict(exported.events[0].attributes))


def test_metric_functions_do_nothing_outside_a_workflow_or_activity() -> None:
    # Code paths reached by unit tests calling workflow helpers directly must not raise.
    order_metrics.order_received(order_metrics.KADO)
    order_metrics.order_stage(
        order_metrics.KADO, "SETTLED", terminal=True, started_at=datetime.now(UTC)
    )
    order_metrics.payment_rebroadcast("ethereum")
    order_metrics.provider_call(order_metrics.KADO, "fetch_order", "ok", timedelta(seconds=1))
