"""Once a transaction may exist the order is never paid twice nor abandoned: a reset of the
workflow follows the existing payment, and cancelling the workflow itself is ignored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import SellOrderResult, SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)


async def first_workflow_task(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return next(
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )


async def test_reset_after_payment_follows_the_existing_payment(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    client = dev_env.client
    order_id = await create_sim_order(admin)
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(client, engine_settings(sc, task_queue)):
        handle = await start_order(client, task_queue, order_id)
        first = await handle.result()
        assert first.outcome is Stage.SETTLED
        # An operator resets the order to its start: it runs again from the first fetch.
        reset = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=handle.id, run_id=first_run(handle)
                ),
                reason="test: reset after payment",
                workflow_task_finish_event_id=await first_workflow_task(handle),
                request_id=str(uuid.uuid4()),
            )
        )
        again = client.get_workflow_handle(
            handle.id, run_id=reset.run_id, result_type=SellOrderResult
        )
        second = await again.result()
    assert second.outcome is Stage.SETTLED
    assert second.confirmed_tx_hash == first.confirmed_tx_hash
    assert sc.token_transfers_to(deposit) == [10 * 10**6]


def first_run(handle: WorkflowHandle[Any, Any]) -> str:
    assert handle.result_run_id is not None
    return handle.result_run_id


async def test_cancelling_the_workflow_after_payment_is_ignored(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, scenario="slow_settlement", slow_settlement_seconds=4)
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        for _ in range(300):  # bounded: 30 s
            state = await handle.query("state", result_type=SellOrderState)
            if state.stage is Stage.TRACKING:
                break
            await asyncio.sleep(0.1)
        await handle.cancel()
        result = await handle.result()
    assert result.outcome is Stage.SETTLED
    assert result.needs_attention  # the ignored cancel is shown to operators
    assert sc.token_transfers_to(deposit) == [10 * 10**6]
