"""The contract works without Python: JSON written by hand from contract/ (as a Go or TypeScript
backend would), started with the Temporal CLI's `temporal workflow start`, settles the order."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.binaries import temporal_cli
from offramp.orders.models import SellOrderResult, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.cli.conftest import CLI_TIMEOUT_SECONDS, CliResult, base_env, run_command
from tests.e2e.support import SellChain, create_sim_order, engine_settings, engine_worker

WAIT_SECONDS = 30.0


async def temporal_workflow_start(
    env: WorkflowEnvironment, task_queue: str, workflow_id: str, input_json: str
) -> CliResult:
    """`temporal workflow start`, exactly as the README shows it."""
    return await run_command(
        [
            str(temporal_cli()),
            "workflow",
            "start",
            "--type",
            "SellOrderWorkflow",
            "--task-queue",
            task_queue,
            "--workflow-id",
            workflow_id,
            "--id-reuse-policy",
            "RejectDuplicate",
            "--input",
            input_json,
            "--address",
            env.client.service_client.config.target_host,
            "--namespace",
            env.client.namespace,
        ],
        base_env(),
        CLI_TIMEOUT_SECONDS,
    )


def run_id(started: CliResult) -> str:
    """The run id `temporal workflow start` prints ("  RunId  <id>")."""
    [line] = [line for line in started.out.splitlines() if line.split()[:1] == ["RunId"]]
    return line.split()[1]


async def test_hand_written_json_started_by_the_temporal_cli_settles(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, amount=Decimal("42.000001"), user_ref="backend-7")
    deposit = (await admin.order(order_id)).data["depositAddress"]
    # By hand, from contract/sell-order-input.schema.json: amounts are decimal strings, durations
    # ISO 8601; fields left out take their defaults.
    input_json = (
        "{"
        f'"order_id": "{order_id}", '
        '"user_ref": "backend-7", '
        '"max_amount": "100.50", '
        '"poll_initial_interval": "PT0.2S", '
        '"poll_max_interval": "PT1S"'
        "}"
    )
    workflow_id = f"kado-sell-{order_id}"
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        started = await temporal_workflow_start(dev_env, task_queue, workflow_id, input_json)
        assert started.code == 0, started.err
        assert workflow_id in started.out
        handle = dev_env.client.get_workflow_handle(workflow_id, result_type=SellOrderResult)
        result = await handle.result()
        # The same order started again once it ended: no new run (the CLI shows the existing
        # one), so nothing can be paid twice.
        again = await temporal_workflow_start(dev_env, task_queue, workflow_id, input_json)
        assert again.code == 0, again.err
        assert run_id(again) == run_id(started) == (await handle.describe()).run_id

    assert result.outcome is Stage.SETTLED, result.reason
    assert result.order_id == order_id
    assert result.amount == Decimal("42.000001")
    assert sc.token_transfers_to(deposit) == [42_000_001]


async def closed_or_task_failed(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
    """The workflow's status once it closed, or None once a workflow task failed while it runs
    (a task failure is retried by the server for ever, the workflow stays RUNNING)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            status = (await handle.describe()).status
            if status is not WorkflowExecutionStatus.RUNNING:
                return status
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return None
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("input_json", "named"),
    [
        ('{"order_id": "%s", "user_ref": "u", "max_amount": 0.1}', "max_amount"),
        ('{"user_ref": "u", "max_amount": "1"}', "order_id"),
    ],
    ids=["amount-as-number", "no-order-id"],
)
async def test_an_invalid_json_input_fails_the_workflow_naming_the_field(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    input_json: str,
    named: str,
) -> None:
    order_id = await create_sim_order(admin)
    workflow_id = f"kado-sell-{order_id}"
    if "%s" in input_json:
        input_json = input_json % order_id
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        started = await temporal_workflow_start(dev_env, task_queue, workflow_id, input_json)
        assert started.code == 0, started.err  # the server does not look into the input
        handle = dev_env.client.get_workflow_handle(workflow_id)
        try:
            status = await closed_or_task_failed(handle)
        finally:
            if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test done")
    assert sc.hot_wallet_nonce() == nonce  # nothing is ever sent
    assert status is WorkflowExecutionStatus.FAILED
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert named in str(failed.value.cause)
