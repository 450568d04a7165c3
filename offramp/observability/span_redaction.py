"""Span export without secrets: a second line of defence, as for log lines (offramp.logs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from offramp.logs import REDACTOR


class RedactingExporter(SpanExporter):
    """Passes spans on with every configured secret removed from the string attributes of the
    spans and their events (a recorded exception's message): a second line of defence, as for
    log lines. The spans are finished (read-only by API), so their attribute maps are replaced."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        for span in spans:
            _redact_attributes(span)
            for event in getattr(span, "_events", None) or ():
                _redact_attributes(event)
        return self._inner.export(spans)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _redact_attributes(holder: Any) -> None:
    attributes = getattr(holder, "_attributes", None)
    if not attributes:
        return
    clean = {
        key: REDACTOR.redact(value) if isinstance(value, str) else value
        for key, value in attributes.items()
    }
    if clean != dict(attributes):
        holder._attributes = clean
