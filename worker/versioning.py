"""Worker Versioning: each worker names its build (deployment name + build id), and the build
that new workflows start on is the deployment's current version (README "Deploying a workflow
change").

Behaviour: every workflow type is PINNED, as the worker's default (README "Deploying a workflow
change"): orders and payments run wholly on the build that started them; the hot-wallet entity
continues as new onto a new current build. Not an annotation on the classes: the server refuses a
workflow task that names a behaviour from a worker without versioning, and the same classes run
on unversioned workers (tests, a plain local worker)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from importlib import metadata
from pathlib import Path

from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentResponse,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from offramp.config import EngineSettings

log = logging.getLogger("offramp.worker")

PACKAGE = "offramp-engine"
DEFAULT_BEHAVIOR = VersioningBehavior.PINNED


def build_id(settings: EngineSettings) -> str:
    """OFFRAMP_BUILD_ID, else the package's version and a digest of its code: a deploy that
    forgets to set a new id still gets one whenever the code changed (pinned runs then stay on
    the build that started them instead of replaying under changed code)."""
    if settings.build_id:
        return settings.build_id
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}-{code_digest()}"


@functools.cache
def code_digest() -> str:
    """12 hex digits of SHA-256 over the engine's Python sources (path and content)."""
    import activities
    import offramp
    import worker
    import workflows

    digest = hashlib.sha256()
    for package in (workflows, activities, worker, offramp):
        root = Path(str(package.__file__)).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def deployment_version(settings: EngineSettings) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(
        deployment_name=settings.deployment_name, build_id=build_id(settings)
    )


def deployment_config(settings: EngineSettings) -> WorkerDeploymentConfig:
    """Always name the build (recorded in history); route by it only with versioning on."""
    return WorkerDeploymentConfig(
        version=deployment_version(settings),
        use_worker_versioning=settings.worker_versioning,
        default_versioning_behavior=(
            DEFAULT_BEHAVIOR if settings.worker_versioning else VersioningBehavior.UNSPECIFIED
        ),
    )


async def describe(client: Client, deployment_name: str) -> DescribeWorkerDeploymentResponse | None:
    """The deployment's record, or None while no worker of it has polled yet."""
    try:
        return await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=client.namespace, deployment_name=deployment_name
            )
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def current_build_id(desc: DescribeWorkerDeploymentResponse | None) -> str | None:
    if desc is None:
        return None
    current = desc.worker_deployment_info.routing_config.current_deployment_version
    return current.build_id or None


def _known(desc: DescribeWorkerDeploymentResponse | None, version: WorkerDeploymentVersion) -> bool:
    if desc is None:
        return False
    return any(
        s.deployment_version.build_id == version.build_id
        for s in desc.worker_deployment_info.version_summaries
    )


def _propagated(desc: DescribeWorkerDeploymentResponse) -> bool:
    """The routing change reached every task queue (UNSPECIFIED: a server that does not say)."""
    state = desc.worker_deployment_info.routing_config_update_state
    return state in (
        RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED,
        RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_UNSPECIFIED,
    )


def _situation(
    desc: DescribeWorkerDeploymentResponse | None, version: WorkerDeploymentVersion
) -> str:
    if desc is None:
        return f"no worker of deployment {version.deployment_name} has polled"
    if not _known(desc, version):
        return f"no worker of build {version.build_id} has polled"
    state = desc.worker_deployment_info.routing_config_update_state
    return (
        f"current build {current_build_id(desc)!r}, routing update "
        f"{RoutingConfigUpdateState.Name(state)}"
    )


async def set_current_version(
    client: Client, version: WorkerDeploymentVersion, wait_seconds: float = 60.0
) -> None:
    """Make `version` the deployment's current version: new workflows (and AUTO_UPGRADE ones at
    their next task) go to it; pinned ones stay where they are. Waits (up to `wait_seconds`)
    for the version's workers to have polled and for the new routing to reach every task queue;
    a no-op for the version that is current already."""
    deadline = time.monotonic() + wait_seconds
    changed = False
    while True:
        desc = await describe(client, version.deployment_name)
        if desc is not None and current_build_id(desc) == version.build_id:
            # Current already (a restart): nothing to wait for; just set: its propagation.
            if not changed or _propagated(desc):
                return
        elif desc is not None and _known(desc, version):
            try:
                await client.workflow_service.set_worker_deployment_current_version(
                    SetWorkerDeploymentCurrentVersionRequest(
                        namespace=client.namespace,
                        deployment_name=version.deployment_name,
                        build_id=version.build_id,
                        conflict_token=desc.conflict_token,
                        identity=client.identity,
                    )
                )
                log.info("current version of %s: %s", version.deployment_name, version.build_id)
                changed = True
                continue
            except RPCError as exc:  # another writer in between: read again
                if exc.status not in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.ABORTED):
                    raise
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{version.to_canonical_string()} is not the current version after "
                f"{wait_seconds:.0f}s: {_situation(desc, version)}"
            )
        await asyncio.sleep(0.2)
