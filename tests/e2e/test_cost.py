"""The cost of an order does not depend on how long settlement takes: a slow settlement (many
more provider polls) leaves exactly the same history as a fast one."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp import search_attributes as sa
from offramp.chain.models import payment_workflow_id
from offramp.orders.models import SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.billing import billed_actions, event_counts
from tests.e2e.happy_bill import EXPECTED_ORDER_FIXED, EXPECTED_PAYMENT, FIXED_BILL, order_bill
from tests.e2e.support import (
    WEBHOOK_WOKEN,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)


async def events_of(handle: WorkflowHandle[Any, Any]) -> Counter[str]:
    return event_counts(await handle.fetch_history())


async def actions_of(handle: WorkflowHandle[Any, Any]) -> Counter[str]:
    return billed_actions(await handle.fetch_history())


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
        await events_of(handle),
        await events_of(payment),
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


async def test_billed_actions_per_order(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    """Counted from the real histories of a happy order and its payment child, attempts of the
    poll-by-retry waits included: a change that adds an activity, upsert, timer, signal or poll
    fails here."""
    order_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=3.0
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        assert (await handle.result()).outcome is Stage.SETTLED
    payment = dev_env.client.get_workflow_handle(payment_workflow_id(f"kado-{order_id}"))
    order_actions, payment_actions = await actions_of(handle), await actions_of(payment)
    polls = await admin.requests_for(order_id)
    print(f"\norder actions {dict(order_actions)}; payment {dict(payment_actions)}; polls {polls}")
    # Every provider call is one billed attempt (fetch + wait polls; the check calls nobody).
    assert order_actions["activity_attempt"] == polls + 1
    fixed = order_actions - Counter(activity_attempt=order_actions["activity_attempt"])
    assert fixed == EXPECTED_ORDER_FIXED
    assert payment_actions == EXPECTED_PAYMENT
    assert order_bill(order_actions, payment_actions) == FIXED_BILL - 2 + polls + 1
    # Fewer upserts, nothing lost: the held changes went out with the next upsert.
    result = await handle.result()
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.STAGE) == Stage.SETTLED.value
    assert attributes.get(sa.TRANSFER_STATUS) == "settled"
    assert attributes.get(sa.TX_HASH) == result.confirmed_tx_hash
    assert (attributes.get(sa.CHAIN), attributes.get(sa.ASSET)) == (result.chain, result.asset)


async def test_long_wait_attempts_poll_inside_and_bill_once(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    """`wait_attempt`: each wait attempt polls the provider many times (the activity sleeps
    between polls): fewer billed attempts than provider calls, same outcome."""
    order_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=6.0
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client, task_queue, order_id, wait_attempt=timedelta(minutes=5)
        )
        assert (await handle.result()).outcome is Stage.SETTLED
        state = await handle.query("state", result_type=SellOrderState)
    actions = await actions_of(handle)
    polls = await admin.requests_for(order_id)
    print(f"\nlong attempts: {dict(actions)}; polls {polls}")
    assert polls >= 10
    # fetch + check + one attempt per wait (the status changes end each wait).
    assert actions["activity_attempt"] == 2 + len(state.provider_statuses) - 1


async def test_with_webhooks_an_order_is_billed_the_same_at_any_settlement_time(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    """Hour-long safety polls in 6-hour attempts: only wakes (as the webhook receiver sends
    them) move the order. Its bill: the fixed part, one attempt per wait, two per wake (the
    signal and the new wait's attempt), however long the provider takes."""
    order_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=4.0
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client,
            task_queue,
            order_id,
            **WEBHOOK_WOKEN,
        )
        async with asyncio.timeout(120):
            # A webhook every 3 s (past the 2 s poll_now gap) until settled.
            while (await handle.query("state", result_type=SellOrderState)).stage is not (
                Stage.SETTLED
            ):
                await handle.signal("poll_now")
                await asyncio.sleep(3)
        result = await handle.result()
    assert result.outcome is Stage.SETTLED
    payment = dev_env.client.get_workflow_handle(payment_workflow_id(f"kado-{order_id}"))
    order_actions, payment_actions = await actions_of(handle), await actions_of(payment)
    wakes = order_actions["signal"]  # poll_now only: a happy payment sends the order no progress
    bill = order_bill(order_actions, payment_actions)
    print(f"\nwith webhooks: {bill} actions ({wakes} wakes), {dict(order_actions)}")
    assert wakes >= 2
    # The fixed part (check and fetch included) + 1 per wait; a wake: its signal, the new wait's
    # attempt and (inside the 2 s gap after a poll started) a deferred-poll timer.
    assert bill <= FIXED_BILL + 2 + 3 * wakes
