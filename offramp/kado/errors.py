"""Typed Kado client failures. Messages carry the provider's message (sanitised, truncated) and
never a secret: the widget id is a header, and no header or request object is ever formatted."""

from __future__ import annotations

import re
from typing import ClassVar

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_PROVIDER_MESSAGE = 200


def sanitise(text: str | None, limit: int = MAX_PROVIDER_MESSAGE) -> str:
    """Provider text made safe for logs: one line, no control characters, bounded length."""
    if not text:
        return ""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class KadoError(Exception):
    """Base class. `error_type` is the stable name used as the Temporal ApplicationError type."""

    error_type: ClassVar[str] = "KadoError"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, order_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.order_id = order_id


class KadoOrderNotFound(KadoError):
    """HTTP 404, or `success: false`: the provider does not know the order. Not retryable."""

    error_type = "KadoOrderNotFound"

    def __init__(self, order_id: str, provider_message: str, *, status_code: int) -> None:
        self.provider_message = sanitise(provider_message)
        self.status_code = status_code
        super().__init__(
            f"order {order_id!r} not found (HTTP {status_code}): "
            f"{self.provider_message or 'no message'}",
            order_id=order_id,
        )


class KadoRequestRejected(KadoError):
    """Any other 4xx (and unexpected 1xx/3xx): our request is wrong. Not retryable."""

    error_type = "KadoRequestRejected"

    def __init__(self, order_id: str | None, status_code: int, provider_message: str) -> None:
        self.provider_message = sanitise(provider_message)
        self.status_code = status_code
        super().__init__(
            f"request for order {order_id!r} rejected (HTTP {status_code}): "
            f"{self.provider_message or 'no message'}",
            order_id=order_id,
        )


class KadoRetryableError(KadoError):
    """Base of the failures that a later attempt may not have."""

    retryable = True
    # Seconds the provider asked us to wait, when it said.
    retry_after: float | None = None


class KadoRateLimited(KadoRetryableError):
    """HTTP 429. `retry_after` from the Retry-After header (seconds), when present."""

    error_type = "KadoRateLimited"

    def __init__(self, order_id: str | None, retry_after: float | None) -> None:
        self.retry_after = retry_after
        after = f", retry after {retry_after:g}s" if retry_after is not None else ""
        super().__init__(f"rate limited fetching order {order_id!r}{after}", order_id=order_id)


class KadoServerError(KadoRetryableError):
    """HTTP 5xx (or 408)."""

    error_type = "KadoServerError"

    def __init__(
        self, order_id: str | None, status_code: int, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(
            f"provider error HTTP {status_code} fetching order {order_id!r}", order_id=order_id
        )


class KadoTransportError(KadoRetryableError):
    """Timeout, connection refused/reset, protocol error: nothing usable came back."""

    error_type = "KadoTransportError"

    def __init__(self, order_id: str | None, what: str) -> None:
        self.what = what
        super().__init__(f"{what} fetching order {order_id!r}", order_id=order_id)


class KadoMalformedResponse(KadoError):
    """A 2xx/404 body that is not the documented shape (HTML, not JSON, wrong wrapper, a field
    of the wrong type or value). `field` names the offending field, dotted with the provider's
    names (`payAmount.amount`, `depositAddress`), or `body`. Not retryable."""

    error_type = "KadoMalformedResponse"

    def __init__(self, order_id: str | None, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(
            f"malformed response for order {order_id!r}: {field} {reason}", order_id=order_id
        )


class KadoInvalidOrderId(KadoError):
    """The order id cannot be a Kado order id (would change the request path). Not retryable."""

    error_type = "KadoInvalidOrderId"


ALL_ERROR_TYPES: tuple[type[KadoError], ...] = (
    KadoOrderNotFound,
    KadoRequestRejected,
    KadoRateLimited,
    KadoServerError,
    KadoTransportError,
    KadoMalformedResponse,
    KadoInvalidOrderId,
)
NON_RETRYABLE_ERROR_TYPES: tuple[str, ...] = tuple(
    cls.error_type for cls in ALL_ERROR_TYPES if not cls.retryable
)
