"""Worker Versioning on the dev server: two builds of the engine on one task queue. An order
started on build 1.0 stays on it (PINNED) after 2.0 becomes current, to its end, while an order
started afterwards runs on 2.0 only. Who ran what is read from the histories."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from offramp.config import EngineSettings
from offramp.orders.models import Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    sell_chain,
    start_order,
    wait_stage,
)
from tests.worker.support import (
    activity_workers,
    child_ids,
    history_events,
    worker_process,
    workflow_task_builds,
)
from worker import versioning

RESULT_WITHIN = 180  # seconds: generous for a loaded machine, but bounded
# The server spreads a new current version to the task queues through its own internal
# workflows: under load (load average 8+ on 2 cores) that took over 120 s once.
ROUTING_WITHIN = 300.0


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellChain]:
    with sell_chain(Path(tmp_path_factory.mktemp("versioning"))) as chain:
        yield chain


def build(sc: SellChain, task_queue: str, deployment: str, build_id: str) -> EngineSettings:
    return engine_settings(sc, task_queue).model_copy(
        update={"worker_versioning": True, "deployment_name": deployment, "build_id": build_id}
    )


async def test_a_pinned_order_finishes_on_its_build_while_new_orders_go_to_the_current(
    dev_env: WorkflowEnvironment, sc: SellChain, task_queue: str
) -> None:
    client = dev_env.client
    deployment = f"offramp-test-{uuid.uuid4().hex[:8]}"
    v1 = build(sc, task_queue, deployment, "1.0")
    v2 = build(sc, task_queue, deployment, "2.0")
    async with SimulatorAdmin(sc.simulator_url) as admin:
        # The first order is paid, then waits: the provider sees the deposit but settles only
        # once the test lowers the confirmations it waits for.
        old_id = await create_sim_order(admin, amount=Decimal("5"), confirmations=1_000_000)
        new_id = await create_sim_order(admin, amount=Decimal("6"))
        async with worker_process(client, v1):
            await versioning.set_current_version(
                client, versioning.deployment_version(v1), ROUTING_WITHIN
            )
            old = await start_order(client, task_queue, old_id)
            await wait_stage(old, Stage.TRACKING)
            async with worker_process(client, v2):
                await versioning.set_current_version(
                    client, versioning.deployment_version(v2), ROUTING_WITHIN
                )
                v2_current_at = datetime.now(UTC)
                new = await start_order(client, task_queue, new_id)
                async with asyncio.timeout(RESULT_WITHIN):
                    assert (await new.result()).outcome is Stage.SETTLED
                await admin.patch_order(old_id, confirmations=1)
                async with asyncio.timeout(RESULT_WITHIN):
                    assert (await old.result()).outcome is Stage.SETTLED

    for handle, build_id in ((old, "1.0"), (new, "2.0")):
        [payment_id] = child_ids(await history_events(handle))
        for workflow in (handle, client.get_workflow_handle(payment_id)):
            events = await history_events(workflow)
            builds = workflow_task_builds(events)
            assert builds and set(builds) == {build_id}, (workflow.id, builds)
            ran = activity_workers(events)
            assert ran and all(identity.endswith(f" {build_id}") for _, identity in ran), ran
        desc = await handle.describe()
        info = desc.raw_description.workflow_execution_info.versioning_info
        assert info.deployment_version.build_id == build_id
    # The old order did work on 1.0 after 2.0 had become current: it was not merely finished.
    late = [
        e
        for e in await history_events(old)
        if e.HasField("workflow_task_completed_event_attributes")
        and e.event_time.ToDatetime(UTC) > v2_current_at
    ]
    assert late and all(
        e.workflow_task_completed_event_attributes.deployment_version.build_id == "1.0"
        for e in late
    )
    assert versioning.current_build_id(await versioning.describe(client, deployment)) == "2.0"
    # What an operator lists to see a build's runs (README, step "Drain").
    assert old.id in await listed(client, f"TemporalWorkerDeploymentVersion = '{deployment}:1.0'")
    # The hot-wallet entity (pinned too) continued as new onto 2.0 at its first task after 2.0
    # became current, so 1.0 can drain; its first run did its work on 1.0.
    first = await first_wallet_run_once_continued(client, task_queue)
    first_run = client.get_workflow_handle(first.id, run_id=first.run_id)
    assert set(workflow_task_builds(await history_events(first_run))) == {"1.0"}
    latest = (await client.get_workflow_handle(first.id).describe()).raw_description
    assert latest.workflow_execution_info.versioning_info.deployment_version.build_id == "2.0"


async def first_wallet_run_once_continued(client: Client, task_queue: str) -> WorkflowExecution:
    """The entity's first run, once the list (eventually consistent) shows it continued."""
    query = f"WorkflowType = 'HotWallet' AND TaskQueue = '{task_queue}'"
    async with asyncio.timeout(60):
        while True:
            runs = sorted(
                [w async for w in client.list_workflows(query)], key=lambda r: r.start_time
            )
            if runs and runs[0].status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                return runs[0]
            await asyncio.sleep(0.5)


async def listed(client: Client, query: str) -> set[str]:
    """Workflow ids the (eventually consistent) list returns for `query`, once it returns any."""
    async with asyncio.timeout(60):
        while True:
            ids = {w.id async for w in client.list_workflows(query)}
            if ids:
                return ids
            await asyncio.sleep(0.5)
