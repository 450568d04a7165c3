"""How an order ends when the workflow is cancelled before sending, and when the provider answers
garbage after we paid (retried until it recovers or the settlement deadline passes)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp.kado.models import WAIT_FOR_ORDER_CHANGE_ACTIVITY
from offramp.orders.models import SellOrderResult, SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.faults import FaultConfig, MalformedKind
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)

WORKFLOW_CANCEL_NOTE = "cancelled by a workflow cancellation request"


async def wait_stage(handle: WorkflowHandle[Any, Any], *stages: Stage) -> SellOrderState:
    async with asyncio.timeout(60):
        while True:
            state: SellOrderState = await handle.query("state", result_type=SellOrderState)
            if state.stage in stages:
                return state
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


async def test_malformed_answers_after_payment_are_retried_until_the_provider_recovers(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, settlement_delay_seconds=1.0)
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        before = await set_malformed_once_paying(handle, admin, order_id, MalformedKind.HTML)
        # Kado settles while its answers are garbled; the workflow keeps asking.
        await admin.wait_for_phase(order_id, "settled", timeout_seconds=60)
        await admin.wait_for(
            order_id, lambda v: v.requests >= before + 6, timeout_seconds=60, what="6 retries"
        )
        state = await handle.query("state", result_type=SellOrderState)
        assert not state.stage.is_terminal and not state.needs_attention
        garbled = await admin.requests_for(order_id) - before
        await admin.set_order_faults(order_id, None)
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.outcome is Stage.SETTLED, result.reason
    assert not result.needs_attention
    assert sc.token_transfers_to(deposit) == [10 * 10**6]
    # The retries live inside one activity: history holds its final attempt only.
    waits, highest_attempt = tracking_attempts(history.events)
    assert highest_attempt >= 6
    assert waits <= 4, f"{waits} wait activities for {garbled} garbled answers"
    print(f"malformed-after-payment: {garbled} garbled answers, {len(history.events)} events")


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
