"""Observability (README "Observability"): order metrics on the SDK's Prometheus endpoint
(`order_metrics`), the worker's health endpoint (`health`) and OpenTelemetry tracing
(`tracing`)."""
