"""How an order ends when the workflow is cancelled before sending, and when the provider answers
garbage after we paid (retried until it recovers or the settlement deadline passes)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import payment_workflow_id
from offramp.orders.models import PAYMENT_OUTCOME_ACTIVITY, SellOrderResult, SellOrderState, Stage
from offramp.providers.kado.models import WAIT_FOR_ORDER_CHANGE_ACTIVITY, WaitForOrderChangeInput
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.faults import FaultConfig, MalformedKind
from tests.e2e.support import (
    FAST_POLL,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
    wait_stage,
)

WORKFLOW_CANCEL_NOTE = "cancelled by a workflow cancellation request"


async def wait_state(
    handle: WorkflowHandle[Any, Any], holds: Callable[[SellOrderState], bool]
) -> SellOrderState:
    async with asyncio.timeout(60):
        while True:
            state: SellOrderState = await handle.query("state", result_type=SellOrderState)
            if holds(state):
                return state
            await asyncio.sleep(0.1)


async def wait_for_pending(handle: WorkflowHandle[Any, Any], activity_type: str) -> None:
    """Until an activity of `activity_type` is pending (scheduled, maybe retrying)."""
    async with asyncio.timeout(60):
        while True:
            description = await handle.describe()
            pending = description.raw_description.pending_activities
            if any(a.activity_type.name == activity_type for a in pending):
                return
            await asyncio.sleep(0.1)


def assert_cancelled_by_workflow(result: SellOrderResult) -> None:
    assert result.outcome is Stage.CANCELLED, result
    assert result.reject_reason is None
    assert result.reason and result.reason.startswith(WORKFLOW_CANCEL_NOTE), result.reason
    assert result.tx_hashes == [] and result.confirmed_tx_hash is None


async def test_workflow_cancel_during_the_first_fetch_ends_cancelled(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    # Every answer is a 503: the fetch activity is retrying when the cancel arrives.
    order_id = await create_sim_order(admin, faults=FaultConfig(error_rate=1.0))
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await admin.wait_for(order_id, lambda v: v.requests >= 1, what="a first fetch")
        assert (await handle.query("state", result_type=SellOrderState)).stage is Stage.RECEIVED
        await handle.cancel()
        result = await handle.result()
    assert_cancelled_by_workflow(result)
    assert sc.hot_wallet_nonce() == nonce


async def test_workflow_cancel_while_waiting_for_readiness_ends_cancelled(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_ORDER)
        await handle.cancel()
        result = await handle.result()
    assert_cancelled_by_workflow(result)
    assert sc.hot_wallet_nonce() == nonce


async def test_workflow_cancel_while_awaiting_approval_ends_cancelled(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, amount=Decimal("6000"))
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_APPROVAL)
        await handle.cancel()
        result = await handle.result()
    assert_cancelled_by_workflow(result)
    assert sc.hot_wallet_nonce() == nonce


MALFORMED = FaultConfig(malformed_rate=1.0, malformed_kind=MalformedKind.HTML)


async def set_malformed_once_paying(
    handle: WorkflowHandle[Any, Any], admin: SimulatorAdmin, order_id: str, kind: MalformedKind
) -> int:
    """From FUNDING on the workflow calls the provider only to follow the order: every answer
    from then on is malformed. Returns the requests served before."""
    await wait_stage(handle, Stage.FUNDING, Stage.CONFIRMING, Stage.TRACKING)
    await admin.set_order_faults(order_id, MALFORMED.model_copy(update={"malformed_kind": kind}))
    return await admin.requests_for(order_id)


def tracking_attempts(events: Sequence[HistoryEvent]) -> tuple[int, int]:
    """(wait activities scheduled, highest attempt number any of them started with)."""
    scheduled = {
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == WAIT_FOR_ORDER_CHANGE_ACTIVITY
    }
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]
    return len(scheduled), max(attempts, default=0)


async def settle_through_garbled_answers(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    at_least: int,
) -> tuple[Counter[str], int, float]:
    """Pay an order, garble every provider answer from then on until Kado settled it and at
    least `at_least` garbled answers were served, then let the provider recover. Returns the
    order's history event counts, the highest attempt of a wait, and the seconds the garbled
    answers took."""
    order_id = await create_sim_order(admin, settlement_delay_seconds=1.0)
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        before = await set_malformed_once_paying(handle, admin, order_id, MalformedKind.HTML)
        started = time.monotonic()
        # Kado settles while its answers are garbled; the workflow keeps asking.
        await admin.wait_for_phase(order_id, "settled", timeout_seconds=60)
        await admin.wait_for(
            order_id, lambda v: v.requests >= before + at_least, timeout_seconds=120
        )
        took = time.monotonic() - started
        state = await handle.query("state", result_type=SellOrderState)
        assert not state.stage.is_terminal and not state.needs_attention
        await admin.set_order_faults(order_id, None)
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.outcome is Stage.SETTLED, result.reason
    assert not result.needs_attention
    assert sc.token_transfers_to(deposit) == [10 * 10**6]
    _, highest_attempt = tracking_attempts(history.events)
    return Counter(EventType.Name(e.event_type) for e in history.events), highest_attempt, took


async def test_malformed_answers_after_payment_are_retried_until_the_provider_recovers(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    few, few_attempts, _ = await settle_through_garbled_answers(
        dev_env, sc, admin, task_queue + "-few", 3
    )
    many, many_attempts, many_took = await settle_through_garbled_answers(
        dev_env, sc, admin, task_queue + "-many", 15
    )
    # The retries live inside one wait activity: history holds its final attempt only, so 15
    # garbled answers leave exactly the history 3 do.
    assert few_attempts >= 3 and many_attempts >= 15
    assert many == few
    # With backoff, not a tight loop: the 14 waits between 15 answers follow the poll cadence.
    cadence = WaitForOrderChangeInput(
        order_id="x",
        initial_interval_seconds=FAST_POLL["poll_initial_interval"].total_seconds(),
        max_interval_seconds=FAST_POLL["poll_max_interval"].total_seconds(),
    )
    assert many_took >= 0.8 * sum(cadence.delay_seconds(n) for n in range(1, 15))
    print(
        f"\nmalformed after payment: {sum(few.values())} events with >= 3 garbled answers, "
        f"{sum(many.values())} with >= 15 (attempt {many_attempts}, {many_took:.1f} s)"
    )


async def test_persistently_malformed_after_payment_ends_unresolved_at_the_deadline(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=3600
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client, task_queue, order_id, settlement_timeout=timedelta(seconds=6)
        )
        before = await set_malformed_once_paying(handle, admin, order_id, MalformedKind.TRUNCATED)
        result = await handle.result()
        state = await handle.query("state", result_type=SellOrderState)
    assert (await admin.requests_for(order_id)) - before >= 2  # retried, not given up at once
    assert result.outcome is Stage.UNRESOLVED
    assert result.needs_attention and result.confirmed_tx_hash
    assert result.reason and "malformed until the settlement deadline" in result.reason
    assert state.attention_reason and "malformed" in state.attention_reason
    # Honest: nothing says the provider confirmed or settled anything.
    for text in (result.reason, state.attention_reason):
        assert "confirmed" not in text and "settled" not in text


async def test_workflow_cancel_while_looking_for_an_earlier_payment_is_not_obeyed(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    # Kado says the crypto is in transit and a payment workflow for the order exists (still
    # running: no worker serves its queue). The order looks for that payment's outcome; a cancel
    # then must not end it, since a transaction may exist.
    order_id = await create_sim_order(admin, overrides={"transferStatus": "pending"})
    payment = await dev_env.client.start_workflow(
        "Payment",
        {"payment_id": f"kado-{order_id}"},
        id=payment_workflow_id(f"kado-{order_id}"),
        task_queue=f"nobody-{uuid.uuid4()}",
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_for_pending(handle, PAYMENT_OUTCOME_ACTIVITY)
        await handle.cancel()
        await wait_state(
            handle, lambda st: any("the look is finished first" in e.note for e in st.timeline)
        )
        # The payment ends without an outcome: the order holds for a person, never CANCELLED.
        await payment.terminate("test: the payment ended without an outcome")
        state = await wait_state(handle, lambda st: st.needs_attention)
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert not state.stage.is_terminal
        assert state.attention_reason and "ended without an outcome" in state.attention_reason
        await handle.terminate("test done")
