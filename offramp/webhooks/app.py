"""The receiver's HTTP surface (aiohttp):

    POST /webhooks/<provider>   one route per provider with a secret configured
        200 {"status": "accepted" | "duplicate" | "noted"}   (accepted: a wake is recorded,
            Temporal is not awaited; noted: the event shows a state the order only waits through,
            e.g. our deposit confirming, so it wakes nothing)
        400 malformed body · 401 bad/missing signature or timestamp · 413 body too large
        503 too many wakes pending (Retry-After; the event is not recorded, redeliver it)
    GET  /health                 200 {"ok": true, "routes", "pending", "wakes", "requests"}

Order of checks: size, signature and timestamp over the raw bytes, then the JSON, then the event
id. Nothing is parsed before it is authenticated, and a refused request changes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from aiohttp import web
from pydantic import SecretStr

from offramp.webhooks.config import WebhookSettings
from offramp.webhooks.dedup import RecentIds
from offramp.webhooks.providers import PROVIDERS, MalformedEvent, ProviderRoute
from offramp.webhooks.signatures import SignatureRejected
from offramp.webhooks.wake import Offer, Waker

log = logging.getLogger("offramp.webhooks")

ROUTE_PREFIX: Final = "/webhooks/"
RETRY_AFTER_SECONDS: Final = "5"


def route_path(provider: str) -> str:
    return f"{ROUTE_PREFIX}{provider}"


def _reply(http_status: int, **fields: str) -> web.Response:
    return web.json_response(fields, status=http_status)


class Receiver:
    """Verifies, deduplicates and hands wakes to the `Waker`; counts every outcome."""

    def __init__(
        self,
        settings: WebhookSettings,
        secrets: dict[str, SecretStr],
        waker: Waker,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._secrets = secrets
        self.waker = waker
        self.seen = RecentIds(settings.dedup_max_entries, settings.dedup_ttl)
        self._clock = clock
        self.requests: Counter[str] = Counter()  # "<provider> <outcome>"

    def __repr__(self) -> str:  # never the secrets
        return f"Receiver(routes={sorted(self._secrets)})"

    @property
    def providers(self) -> list[str]:
        return sorted(self._secrets)

    def app(self) -> web.Application:
        # client_max_size: aiohttp refuses a larger body while reading it (also when chunked).
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        for name in self.providers:
            handler = functools.partial(self.receive, PROVIDERS[name])
            app.router.add_post(route_path(name), handler)
        app.router.add_get("/health", self.health)
        return app

    def _refuse(self, route: ProviderRoute, status: int, outcome: str, reason: str) -> web.Response:
        self.requests[f"{route.name} {outcome}"] += 1
        log.info("%s webhook refused (%d): %s", route.name, status, reason)
        return _reply(status, error=reason)

    async def receive(self, route: ProviderRoute, request: web.Request) -> web.Response:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._refuse(route, 413, "too_large", f"body over {limit} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(route, 413, "too_large", f"body over {limit} bytes")
        try:
            signature = route.verify(
                request.headers,
                body,
                self._secrets[route.name],
                now=self._clock(),
                tolerance=self.settings.tolerance_seconds,
                names=self.settings.headers(route.name),
            )
        except SignatureRejected as exc:
            return self._refuse(route, 401, "unauthenticated", exc.reason)
        try:
            event = route.parse(body, signature)
        except MalformedEvent as exc:
            return self._refuse(route, 400, "malformed", exc.reason)
        key = f"{route.name}:{event.event_id}"
        if not self.seen.add(key, time.monotonic()):
            self.requests[f"{route.name} duplicate"] += 1
            log.debug("%s event %s: duplicate, ignored", route.name, event.event_id)
            return _reply(200, status="duplicate")
        workflow_id = route.workflow_id(event.order_id)
        if not event.wake:
            self.requests[f"{route.name} noted"] += 1
            log.debug("%s event %s: nothing to act on, no wake", route.name, event.event_id)
            return _reply(200, status="noted")
        if self.waker.offer(workflow_id) is Offer.FULL:
            self.seen.discard(key)  # not acted on: its redelivery must count
            self.requests[f"{route.name} busy"] += 1
            log.warning("%s event %s: too many wakes pending, refused", route.name, event.event_id)
            response = _reply(503, error="busy, retry later")
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        self.requests[f"{route.name} accepted"] += 1
        log.debug(
            "%s event %s (%s) for order %s: wake %s",
            route.name,
            event.event_id,
            event.event_type,
            event.order_id,
            workflow_id,
        )
        return _reply(200, status="accepted")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "routes": [route_path(name) for name in self.providers],
                "pending": self.waker.pending,
                "wakes": dataclasses.asdict(self.waker.counts),
                "requests": dict(self.requests),
                "dedup": {"size": len(self.seen), "evicted": self.seen.evicted},
            }
        )
