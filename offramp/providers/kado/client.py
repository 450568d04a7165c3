"""Async client for Kado's order-status route, with typed failures (see `errors`)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Final
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from offramp.config import EngineSettings
from offramp.providers.kado.errors import (
    KadoError,
    KadoInvalidOrderId,
    KadoMalformedResponse,
    KadoOrderNotFound,
    KadoRateLimited,
    KadoRequestRejected,
    KadoServerError,
    KadoTransportError,
    sanitise,
)
from offramp.providers.kado.models import (
    KadoOrder,
    OrderParseError,
    order_from_data,
    parse_envelope,
)

log = logging.getLogger(__name__)

ORDER_PATH: Final = "/v2/public/orders/{order_id}"
WIDGET_ID_HEADER: Final = "X-Widget-Id"
# Order ids are 24-hex Mongo ids or partner-chosen session ids: letters, digits, - and _.
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# A status body is a few KB; anything far bigger is not one, and is not read into memory.
MAX_BODY_BYTES: Final = 1_000_000
MAX_RETRY_AFTER_SECONDS: Final = 3600.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), clamped to [0, 1 h]."""
    if value is None:
        return None
    text = value.strip()
    seconds: float
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class KadoClient:
    """`GET {base_url}/v2/public/orders/{orderId}` → `KadoOrder`, or a `KadoError`.

    `widget_id` is sent as `X-Widget-Id` when configured (never required, never logged).
    `requests_sent` counts HTTP requests (tests assert bounds on it).
    """

    def __init__(
        self,
        base_url: str,
        *,
        widget_id: SecretStr | None = None,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 5.0,
        max_connections: int = 20,
        max_keepalive_connections: int = 10,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "offramp-engine/0.1"}
        if widget_id is not None and widget_id.get_secret_value():
            headers[WIDGET_ID_HEADER] = widget_id.get_secret_value()
        self.base_url = base_url.rstrip("/")
        self.requests_sent = 0
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(
                timeout_seconds, connect=min(connect_timeout_seconds, timeout_seconds)
            ),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_keepalive_connections,
            ),
            follow_redirects=False,
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: EngineSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> KadoClient:
        return cls(
            settings.kado_base_url,
            widget_id=settings.kado_widget_id,
            timeout_seconds=settings.kado_timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"KadoClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> KadoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_order(self, order_id: str) -> KadoOrder:
        if not _ORDER_ID.match(order_id):
            raise KadoInvalidOrderId(
                "order id must be 1-128 letters, digits, '-' or '_'", order_id=None
            )
        path = ORDER_PATH.format(order_id=quote(order_id, safe=""))
        self.requests_sent += 1
        try:
            async with self._http.stream("GET", path) as response:
                body = await self._read_capped(response, order_id)
        except KadoError:
            raise
        except httpx.TimeoutException as exc:
            raise KadoTransportError(order_id, f"timeout ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            # Class name only: httpx messages may include the URL, which is fine, but nothing
            # from the request headers must ever reach an error.
            raise KadoTransportError(order_id, f"transport error ({type(exc).__name__})") from None
        return self._interpret(order_id, response, body)

    @staticmethod
    async def _read_capped(response: httpx.Response, order_id: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise KadoMalformedResponse(order_id, "body", f"is over {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _interpret(self, order_id: str, response: httpx.Response, body: bytes) -> KadoOrder:
        status = response.status_code
        if status == 429:
            raise KadoRateLimited(order_id, parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500 or status == 408:
            raise KadoServerError(
                order_id, status, parse_retry_after(response.headers.get("Retry-After"))
            )
        if status == 404:
            raise KadoOrderNotFound(order_id, self._message_of(body), status_code=404)
        if not 200 <= status < 300:
            raise KadoRequestRejected(order_id, status, self._message_of(body))
        try:
            envelope = parse_envelope(body)
            if not envelope.success:
                raise KadoOrderNotFound(order_id, envelope.message or "", status_code=status)
            if envelope.data is None:
                raise OrderParseError("data", "is missing")
            return order_from_data(envelope.data)
        except OrderParseError as exc:
            log.warning(
                "Kado order %s: malformed response (%s %s)", order_id, exc.field, exc.reason
            )
            raise KadoMalformedResponse(order_id, exc.field, exc.reason) from None

    @staticmethod
    def _message_of(body: bytes) -> str:
        """The provider's `message` from an error body, when it has one."""
        try:
            return sanitise(parse_envelope(body).message)
        except OrderParseError:
            return ""
