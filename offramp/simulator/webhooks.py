"""Webhooks: `{id, resource, type, data}` POSTed on each order change, signed with HMAC-SHA256.

[ours] `X-Kado-Timestamp: <unix seconds>` and `X-Kado-Signature: <hex HMAC-SHA256 of
"<timestamp>." + raw body>` with the shared secret (signature header configurable), the scheme the
webhook receiver verifies (offramp.webhooks.signatures). Each attempt is signed afresh, with the
same event id. A webhook is only a hint to poll now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, Final

import httpx
from pydantic import SecretStr

from offramp.simulator.jsonx import dumps_exact
from offramp.webhooks.signatures import KADO_SIGNATURE_HEADER, KADO_TIMESTAMP_HEADER, hmac_hex

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE_HEADER: Final = KADO_SIGNATURE_HEADER
ATTEMPTS: Final = 3


class WebhookSender:
    """Fire-and-forget delivery with a few retries; never blocks the simulator's loop."""

    def __init__(
        self,
        default_url: str | None,
        secret: SecretStr | None,
        header: str = DEFAULT_SIGNATURE_HEADER,
    ) -> None:
        self.default_url = default_url
        self.secret = secret
        self.header = header
        self.sent = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))

    def __repr__(self) -> str:
        return f"WebhookSender(default_url={self.default_url!r}, header={self.header!r})"

    def notify(self, url: str | None, event_type: str, data: dict[str, Any]) -> None:
        target = url or self.default_url
        if not target:
            return
        payload = {"id": str(uuid.uuid4()), "resource": "order", "type": event_type, "data": data}
        body = dumps_exact(payload).encode()
        task = asyncio.create_task(self._deliver(target, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            headers = {"Content-Type": "application/json"}
            if self.secret is not None:
                stamp = str(int(time.time()))
                headers[KADO_TIMESTAMP_HEADER] = stamp
                headers[self.header] = hmac_hex(self.secret, stamp, body)
            try:
                response = await self._http.post(url, content=body, headers=headers)
                if response.status_code < 300:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            log.info("webhook to %s: attempt %d failed (%s)", url, attempt, problem)
            if attempt < ATTEMPTS:
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        self.failed += 1

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._http.aclose()
