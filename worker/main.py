"""Run the worker until SIGTERM/SIGINT, then shut down gracefully (in-flight activities finish or
are cancelled with a heartbeat deadline; Temporal retries anything left)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from offramp.config import ConfigError, EngineSettings, load_settings
from offramp.logs import configure_logging, redact_settings_secrets
from offramp.metrics import metrics_address, metrics_runtime
from offramp.observability.attention_gauge import attention_gauge_interval, run_attention_gauge
from offramp.observability.health import HEALTH_PATH, health_address, serve_worker_health
from offramp.observability.tracing import configure_tracing, shutdown_tracing
from offramp.task_queues import signer_task_queue
from offramp.temporal_client import connect
from worker import registry, roles, versioning
from worker.resources import WorkerResources

log = logging.getLogger("offramp.worker")

READY_MESSAGE = "worker ready"


def _worker(
    client: Client,
    settings: EngineSettings,
    task_queue: str,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    queue_kind: str,
) -> Worker:
    version = versioning.deployment_version(settings)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        deployment_config=versioning.deployment_config(settings),
        # Who ran each task, in every history event the worker records (role and build).
        identity=f"{client.identity} {settings.worker_role}/{queue_kind} {version.build_id}",
        # Sizing (README "Worker sizing"): the cache holds every open workflow, so a task does
        # not replay a whole history; activities are async (most wait on I/O), so many fit.
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.worker_sticky_schedule_to_start_timeout_seconds
        ),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


def _main_queue_worker(
    client: Client, settings: EngineSettings, registered: Sequence[Callable[..., Any]]
) -> Worker | None:
    role = settings.worker_role
    workflows = registry.workflows() if roles.runs_workflows(role) else []
    activities = registry.main_queue_activities(role, registered)
    if not workflows and not activities:
        return None
    return _worker(client, settings, settings.task_queue, workflows, activities, "main")


def _signer_queue_worker(
    client: Client, settings: EngineSettings, registered: Sequence[Callable[..., Any]]
) -> Worker | None:
    activities = registry.signer_queue_activities(settings.worker_role, registered)
    if not activities:
        return None
    queue = signer_task_queue(settings.task_queue)
    return _worker(client, settings, queue, [], activities, "signer")


def _registered(settings: EngineSettings, resources: WorkerResources) -> list[Callable[..., Any]]:
    return (
        list(registry.activities(resources)) if roles.runs_activities(settings.worker_role) else []
    )


def build_workers(
    client: Client, settings: EngineSettings, resources: WorkerResources
) -> list[Worker]:
    """The role's workers: one on the main queue and/or one on the signer queue
    (offramp.task_queues), sharing the process's resources and build."""
    registered = _registered(settings, resources)
    built = (
        _main_queue_worker(client, settings, registered),
        _signer_queue_worker(client, settings, registered),
    )
    workers = [w for w in built if w is not None]
    if not workers:
        raise ConfigError("nothing to run: no workflow or activity is registered")
    return workers


def build_worker(client: Client, settings: EngineSettings, resources: WorkerResources) -> Worker:
    """The main queue's worker alone (sizing checks; the process runs build_workers)."""
    worker = _main_queue_worker(client, settings, _registered(settings, resources))
    if worker is None:
        raise ConfigError("nothing to run on the main queue")
    return worker


async def create_resources(settings: EngineSettings) -> WorkerResources:
    """The role's resources, refusing (ConfigError) a worker that would take work it cannot do."""
    roles.check_configuration(settings)
    if not roles.runs_activities(settings.worker_role):
        return WorkerResources(settings=settings)  # workflow tasks need no chain, key or client
    resources = await WorkerResources.create(settings)
    try:
        assert resources.chains is not None
        roles.check_serves_a_chain(resources.chains)
    except BaseException:
        await resources.aclose()
        raise
    return resources


async def run_worker(
    settings: EngineSettings,
    stop: asyncio.Event,
    temporal_env: Mapping[str, str] | None = None,
) -> None:
    address = metrics_address(temporal_env)
    runtime = metrics_runtime(address) if address else None
    health_at = health_address(temporal_env)
    gauge_interval = attention_gauge_interval(temporal_env)
    # Before any HTTP client exists: the instrumentation hooks into clients created after it.
    configure_tracing("offramp-worker", temporal_env)
    resources = await create_resources(settings)
    try:
        try:
            client = await connect(temporal_env, **({"runtime": runtime} if runtime else {}))
        except RuntimeError as exc:
            raise ConfigError(
                f"cannot connect to Temporal (TEMPORAL_ADDRESS etc.): {exc}"
            ) from None
        workers = build_workers(client, settings, resources)
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            if health_at:  # healthy only while every worker of the process polls
                await running.enter_async_context(serve_worker_health(health_at, client, workers))
            if runtime is not None:
                meter = runtime.metric_meter
                running.enter_context(
                    run_attention_gauge(client, meter, settings.task_queue, gauge_interval)
                )
            version = versioning.deployment_version(settings)
            log.info(
                "%s: task queue %s, role %s, build %s%s%s%s",
                READY_MESSAGE,
                ", ".join(w.task_queue for w in workers),
                settings.worker_role,
                version.to_canonical_string(),
                " (versioned)" if settings.worker_versioning else "",
                f", metrics on http://{address}/metrics" if address else "",
                f", health on http://{health_at}{HEALTH_PATH}" if health_at else "",
            )
            await stop.wait()
            log.info("stopping: finishing in-flight tasks")
    finally:
        await resources.aclose()
        shutdown_tracing()


async def _main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"offramp worker: {exc}", file=sys.stderr)
        return 2
    redact_settings_secrets(settings)
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
    try:
        configure_logging()  # OFFRAMP_LOG_LEVEL, OFFRAMP_LOG_FORMAT (README "Logs")
    except ConfigError as exc:
        print(f"offramp worker: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_main())
