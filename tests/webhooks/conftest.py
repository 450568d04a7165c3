"""The receiver in-process on a real port (aiohttp, real HTTP), waking real workflows on the
session dev server through the real Temporal signaller; a private chain and Kado simulator for the
orders it wakes (as the e2e tests have)."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.jsonx import dumps_exact
from offramp.webhooks.app import Receiver, route_path
from offramp.webhooks.config import WebhookSettings
from offramp.webhooks.signatures import sign_kado, sign_kidapay
from offramp.webhooks.wake import Waker, temporal_signaller
from tests.e2e.support import SellChain, sell_chain

MAX_BODY = 4096


@dataclass
class RunningReceiver:
    receiver: Receiver
    base_url: str
    secret: SecretStr
    http: httpx.AsyncClient

    @property
    def waker(self) -> Waker:
        return self.receiver.waker

    async def post(
        self, provider: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.base_url}{route_path(provider)}", content=body, headers=headers or {}
        )

    async def send_kado(
        self, payload: dict[str, Any], *, timestamp: int | None = None
    ) -> httpx.Response:
        body = dumps_exact(payload).encode()  # the order's amounts are Decimals
        stamp = int(time.time()) if timestamp is None else timestamp
        return await self.post("kado", body, sign_kado(body, self.secret, stamp))

    async def send_kidapay(self, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        return await self.post("kidapay", body, sign_kidapay(body, self.secret, int(time.time())))


def kado_event(order_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": f"evt-{uuid.uuid4()}",
        "resource": "order",
        "type": "order.updated",
        "data": {**(data or {}), "id": order_id},
    }


@pytest.fixture
def webhook_secret() -> SecretStr:
    """The receiver's secret for both routes (a module whose simulator signs overrides it)."""
    return SecretStr(secrets.token_hex(16))


@pytest.fixture
async def hooks(
    dev_env: WorkflowEnvironment, webhook_secret: SecretStr
) -> AsyncIterator[RunningReceiver]:
    secret = webhook_secret
    settings = WebhookSettings(
        max_body_bytes=MAX_BODY, order_gap_seconds=0, kado_secret=secret, kidapay_secret=secret
    )
    waker = Waker(temporal_signaller(dev_env.client), order_gap_seconds=0, concurrency=4)
    receiver = Receiver(settings, settings.secrets(), waker)
    waker.start()
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            yield RunningReceiver(receiver, f"http://{host}:{port}", secret, http)
    finally:
        await runner.cleanup()
        await waker.stop()


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellChain]:
    with sell_chain(Path(tmp_path_factory.mktemp("webhooks"))) as chain:
        yield chain


@pytest.fixture
async def admin(sc: SellChain) -> AsyncIterator[SimulatorAdmin]:
    async with SimulatorAdmin(sc.simulator_url) as client:
        yield client
