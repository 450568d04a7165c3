"""The worker's health endpoint (`OFFRAMP_HEALTH_ADDRESS=host:port`, unset: none).

`GET /healthz` answers 200 while the worker polls its task queue and reaches Temporal, and 503
(with the reason) when it does not: the worker is not running (not started yet, shutting down,
or its polling failed) or the server does not answer a cheap RPC (GetSystemInfo, the call the
SDK itself makes on connect) within a few seconds. Each request makes one such RPC, never billed.
A container healthcheck (docker-compose.yml) and a Kubernetes probe use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import Worker

from offramp.config import ENV_PREFIX, ConfigError
from offramp.metrics import host_port

HEALTH_ADDRESS_VAR = f"{ENV_PREFIX}HEALTH_ADDRESS"
HEALTH_PATH = "/healthz"
_RPC_TIMEOUT = timedelta(seconds=5)

log = logging.getLogger("offramp.health")


def health_address(env: Mapping[str, str] | None = None) -> str | None:
    return host_port(HEALTH_ADDRESS_VAR, "0.0.0.0:8081", env)


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    reason: str


class WorkerHealth:
    """Whether every one of the process's `workers` polls and their client reaches Temporal."""

    def __init__(self, client: Client, workers: Sequence[Worker]) -> None:
        self._client = client
        self._workers = list(workers)

    async def check(self) -> HealthReport:
        if any(not w.is_running or w.is_shutdown for w in self._workers):
            return HealthReport(False, "the worker is not polling (stopped or shutting down)")
        try:
            await self._client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=_RPC_TIMEOUT
            )
        except Exception as exc:  # RPCError, or the core's connection error
            return HealthReport(False, f"cannot reach Temporal: {type(exc).__name__}: {exc}")
        return HealthReport(True, "polling; Temporal reachable")


def health_app(health: WorkerHealth) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        report = await health.check()
        if not report.healthy:
            log.debug("health check: unhealthy: %s", report.reason)
        return web.json_response(
            {"status": "ok" if report.healthy else "unhealthy", "reason": report.reason},
            status=200 if report.healthy else 503,
        )

    app = web.Application()
    app.router.add_get(HEALTH_PATH, healthz)
    return app


@asynccontextmanager
async def serve_worker_health(
    address: str, client: Client, workers: Sequence[Worker]
) -> AsyncIterator[None]:
    """Serve `GET /healthz` on `address` (host:port) for the duration of the block; ConfigError
    naming the variable if it cannot bind."""
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(
        health_app(WorkerHealth(client, workers)), access_log=None, handle_signals=False
    )
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host.strip("[]"), int(port)).start()
        except OSError as exc:
            raise ConfigError(
                f"invalid configuration: {HEALTH_ADDRESS_VAR}: cannot serve on {address}: {exc}"
            ) from None
        yield
    finally:
        # Bounded: a probe in flight must not hold up the worker's shutdown.
        await asyncio.wait_for(runner.cleanup(), timeout=10)
