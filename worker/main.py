"""Run the worker until SIGTERM/SIGINT, then shut down gracefully (in-flight activities finish or
are cancelled with a heartbeat deadline; Temporal retries anything left)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from offramp.config import ConfigError, EngineSettings, load_settings
from offramp.temporal_client import connect
from worker import registry
from worker.resources import WorkerResources

log = logging.getLogger("offramp.worker")

READY_MESSAGE = "worker ready"


def build_worker(client: Client, settings: EngineSettings, resources: WorkerResources) -> Worker:
    workflows = registry.workflows()
    activities = registry.activities(resources)
    if not workflows and not activities:
        raise ConfigError("nothing to run: no workflow or activity is registered")
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        activities=activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(
    settings: EngineSettings,
    stop: asyncio.Event,
    temporal_env: Mapping[str, str] | None = None,
) -> None:
    try:
        client = await connect(temporal_env)
    except RuntimeError as exc:
        raise ConfigError(f"cannot connect to Temporal (TEMPORAL_ADDRESS etc.): {exc}") from None
    resources = await WorkerResources.create(settings)
    try:
        worker = build_worker(client, settings, resources)
        async with worker:
            log.info("%s: task queue %s", READY_MESSAGE, settings.task_queue)
            await stop.wait()
            log.info("stopping: finishing in-flight tasks")
    finally:
        await resources.aclose()


async def _main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"offramp worker: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_worker(settings, stop)
    except ConfigError as exc:
        print(f"offramp worker: {exc}", file=sys.stderr)
        return 2
    return 0


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(_main())
