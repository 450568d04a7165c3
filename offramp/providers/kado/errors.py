"""Typed Kado client failures. Messages carry the provider's message (sanitised, truncated) and
never a secret: the widget id is a header, and no header or request object is ever formatted."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from offramp.providers.base import ErrorKind, ProviderError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_PROVIDER_MESSAGE = 200


def sanitise(text: str | None, limit: int = MAX_PROVIDER_MESSAGE) -> str:
    """Provider text made safe for logs: one line, no control characters, bounded length."""
    if not text:
        return ""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class KadoError(ProviderError):
    """Base class. `error_type` is the stable name used as the Temporal ApplicationError type
    (committed histories hold these names: never rename one)."""

    error_type: ClassVar[str] = "KadoError"


class _KadoRefusal(KadoError):
    """An answer that refuses the request: its HTTP status and the provider's (sanitised)
    message travel in the details."""

    def __init__(
        self, what: str, order_id: str | None, status_code: int, provider_message: str
    ) -> None:
        self.provider_message = sanitise(provider_message)
        self.status_code = status_code
        super().__init__(
            f"{what} (HTTP {status_code}): {self.provider_message or 'no message'}",
            order_id=order_id,
        )

    def details(self) -> dict[str, Any]:
        return {
            **super().details(),
            "status_code": self.status_code,
            "provider_message": self.provider_message,
        }


class KadoOrderNotFound(_KadoRefusal):
    """HTTP 404, or `success: false`: the provider does not know the order. Not retryable."""

    kind = ErrorKind.NOT_FOUND
    error_type = "KadoOrderNotFound"

    def __init__(self, order_id: str, provider_message: str, *, status_code: int) -> None:
        super().__init__(f"order {order_id!r} not found", order_id, status_code, provider_message)


class KadoRequestRejected(_KadoRefusal):
    """Any other 4xx (and unexpected 1xx/3xx): our request is wrong. Not retryable."""

    kind = ErrorKind.REQUEST_REJECTED
    error_type = "KadoRequestRejected"

    def __init__(self, order_id: str | None, status_code: int, provider_message: str) -> None:
        super().__init__(
            f"request for order {order_id!r} rejected", order_id, status_code, provider_message
        )


class KadoRetryableError(KadoError):
    """Base of the failures that a later attempt may not have."""

    retryable = True

    def details(self) -> dict[str, Any]:
        details = super().details()
        if self.retry_after is not None:
            details.update(retry_after_seconds=self.retry_after)
        return details


class KadoRateLimited(KadoRetryableError):
    """HTTP 429. `retry_after` from the Retry-After header (seconds), when present."""

    kind = ErrorKind.RATE_LIMITED
    error_type = "KadoRateLimited"
    benign = True

    def __init__(self, order_id: str | None, retry_after: float | None) -> None:
        self.retry_after = retry_after
        after = f", retry after {retry_after:g}s" if retry_after is not None else ""
        super().__init__(f"rate limited fetching order {order_id!r}{after}", order_id=order_id)


class KadoServerError(KadoRetryableError):
    """HTTP 5xx (or 408)."""

    kind = ErrorKind.SERVER_ERROR
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

    kind = ErrorKind.TRANSPORT
    error_type = "KadoTransportError"

    def __init__(self, order_id: str | None, what: str) -> None:
        self.what = what
        super().__init__(f"{what} fetching order {order_id!r}", order_id=order_id)


class KadoMalformedResponse(KadoError):
    """A 2xx/404 body that is not the documented shape (HTML, not JSON, wrong wrapper, a field
    of the wrong type or value). `field` names the offending field, dotted with the provider's
    names (`payAmount.amount`, `depositAddress`), or `body`. Not retryable."""

    kind = ErrorKind.MALFORMED
    error_type = "KadoMalformedResponse"

    def __init__(self, order_id: str | None, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(
            f"malformed response for order {order_id!r}: {field} {reason}", order_id=order_id
        )

    def details(self) -> dict[str, Any]:
        return {**super().details(), "field": self.field, "reason": self.reason}


class KadoInvalidOrderId(KadoError):
    """The order id cannot be a Kado order id (would change the request path). Not retryable."""

    kind = ErrorKind.INVALID_ORDER_ID
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
# The wait activity's "no change yet" (a BENIGN retry).
NOT_CHANGED_ERROR_TYPE = "KadoOrderNotChanged"
# Every ApplicationError type a Kado activity raises, by kind: the one place they are written.
ERROR_TYPES: dict[ErrorKind, str] = {
    **{cls.kind: cls.error_type for cls in ALL_ERROR_TYPES},
    ErrorKind.NOT_CHANGED: NOT_CHANGED_ERROR_TYPE,
}
