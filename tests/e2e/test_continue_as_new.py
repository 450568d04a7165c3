"""A long-lived order continues as new: wake storms while it waits for the provider, before and
after its payment, hand it to fresh runs whose histories stay under the budget; it is paid exactly
once and settles, with its start time and deadlines kept."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.continuation import current_run, run_chain, storm_until_continued, wake_until
from tests.e2e.support import (
    HOUR_POLLS,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
    wait_stage,
)

BUDGET = 150
# A round of the wait can overshoot the budget by what arrived meanwhile (signals batch).
SLACK = 120


async def test_a_long_lived_order_continues_as_new_and_is_paid_once(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    client = dev_env.client
    order_id = await create_sim_order(
        admin, ready_after_seconds=3600, scenario="slow_settlement", slow_settlement_seconds=3600
    )
    async with engine_worker(client, engine_settings(sc, task_queue)):
        handle = await start_order(
            client,
            task_queue,
            order_id,
            history_budget=BUDGET,
            **HOUR_POLLS,
        )
        first = await wait_stage(handle, Stage.AWAITING_ORDER)
        started_at = first.timeline[0].at
        first_run = await current_run(handle)

        # Before payment: the next run starts over from the fetch, still waiting.
        await storm_until_continued(handle)
        await wait_stage(handle, Stage.AWAITING_ORDER)
        await admin.patch_order(order_id, ready_after_seconds=0)
        await wake_until(handle, lambda state: state.stage is Stage.TRACKING)

        # After payment: the next run goes on following the paid order.
        await storm_until_continued(handle)
        await wait_stage(handle, Stage.TRACKING)
        # The provider settles (served as settled) and a webhook says so.
        settled = {
            "transferStatus": "settled",
            "providerDisbursementStatus": "completed",
            "machineStatusField": "SETTLED",
        }
        await admin.patch_order(order_id, overrides=settled)
        await wake_until(handle, lambda state: state.stage.is_terminal)
        result = await handle.result()
        state: SellOrderState = await handle.query("state", result_type=SellOrderState)

    assert result.outcome is Stage.SETTLED, result.reason
    assert result.deposit_address is not None
    assert sc.token_transfers_to(result.deposit_address) == [result.amount_base_units]  # once
    assert result.started_at == started_at
    runs = await run_chain(client, handle.id, first_run)
    assert len(runs) >= 3
    assert all(len(run.events) <= BUDGET + SLACK for run in runs), [len(r.events) for r in runs]
    # The run after the payment went straight back to following: no fetch, no check, no child.
    last_activities = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in runs[-1].events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    assert last_activities == {"kado_wait_for_order_change"}, last_activities
    assert not any(
        e.HasField("start_child_workflow_execution_initiated_event_attributes")
        for e in runs[-1].events
    )
    print(f"\nruns: {[len(run.events) for run in runs]} events")
    notes = [entry.note for entry in state.timeline]
    assert sum("continued as new" in note for note in notes) >= 2
