"""The cost of an order does not depend on how long settlement takes: a slow settlement (many
more provider polls) leaves exactly the same history as a fast one."""

from __future__ import annotations

from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import payment_workflow_id
from offramp.orders.models import SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)


async def event_counts(handle: WorkflowHandle[Any, Any]) -> Counter[str]:
    history = await handle.fetch_history()
    return Counter(EventType.Name(e.event_type) for e in history.events)


async def run_settling_in(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    seconds: float,
) -> tuple[Counter[str], Counter[str], SellOrderState, int]:
    order_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=seconds
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        result = await handle.result()
        state = await handle.query("state", result_type=SellOrderState)
    assert result.outcome is Stage.SETTLED
    payment = dev_env.client.get_workflow_handle(payment_workflow_id(f"kado-{order_id}"))
    return (
        await event_counts(handle),
        await event_counts(payment),
        state,
        await admin.requests_for(order_id),
    )


async def test_history_does_not_grow_with_settlement_time(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    fast, fast_payment, fast_state, fast_polls = await run_settling_in(
        dev_env, sc, admin, task_queue + "-fast", 3.0
    )
    slow, slow_payment, slow_state, slow_polls = await run_settling_in(
        dev_env, sc, admin, task_queue + "-slow", 18.0
    )
    # Same provider status sequence, many more polls, the very same history shape.
    assert fast_state.provider_statuses == slow_state.provider_statuses
    assert slow_polls >= fast_polls + 10
    assert slow == fast
    assert slow_payment == fast_payment
    # A happy order: fetch, check and one wait per provider status change; one payment child.
    activities = slow["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"]
    assert activities == 2 + (len(slow_state.provider_statuses) - 1)
    assert slow["EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED"] == 1
    print(
        f"\nhappy order: {sum(slow.values())} events, {activities} activities "
        f"(+ payment child: {sum(slow_payment.values())} events, "
        f"{slow_payment['EVENT_TYPE_ACTIVITY_TASK_SCHEDULED']} activities); "
        f"provider polls fast={fast_polls} slow={slow_polls}"
    )
