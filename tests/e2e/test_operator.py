"""Operators steer orders: approve / reject above the review threshold, cancel before sending
(refused after), poll_now; starting the same order twice pays once."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.api.enums.v1 import ApplicationErrorCategory
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.binaries import temporal_cli
from offramp.orders.models import Decision, RejectReason, SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
    wait_stage,
)

OPERATOR = Decision(operator="ops@example.com", note="checked")


async def test_approval_then_settled(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, amount=Decimal("6000"))
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_APPROVAL)
        assert sc.token_transfers_to(deposit) == []
        # Cancel and approve validators: approve is accepted exactly once.
        assert "approved" in await handle.execute_update("approve", OPERATOR, result_type=str)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("approve", OPERATOR, result_type=str)
        result = await handle.result()
        state = await handle.query("state", result_type=SellOrderState)
    assert result.outcome is Stage.SETTLED
    assert state.approved_by == OPERATOR.operator
    assert sc.token_transfers_to(deposit) == [6000 * 10**6]


async def test_operator_rejects(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, amount=Decimal("5000"))
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_APPROVAL)
        await handle.execute_update("reject", OPERATOR, result_type=str)
        result = await handle.result()
    assert result.outcome is Stage.REJECTED and result.reject_reason is RejectReason.NOT_APPROVED
    assert sc.hot_wallet_nonce() == nonce


async def test_approval_not_needed_below_threshold_is_refused(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_ORDER)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("approve", OPERATOR, result_type=str)
        assert "not waiting for approval" in str(refused.value.cause)
        await handle.execute_update("cancel", OPERATOR, result_type=str)
        await handle.result()


async def test_cancel_before_sending(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_ORDER)
        await handle.execute_update("cancel", OPERATOR, result_type=str)
        result = await handle.result()
    assert result.outcome is Stage.CANCELLED
    assert result.tx_hashes == []
    assert sc.hot_wallet_nonce() == nonce


async def test_cancel_refused_once_a_transaction_may_exist(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=3600
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        state = await wait_stage(handle, Stage.TRACKING)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("cancel", OPERATOR, result_type=str)
        assert "a transaction may exist" in str(refused.value.cause)
        assert state.confirmed_tx_hash
        await handle.terminate("test done")


# A payment and two provider round trips, each moved only by poll_now: minutes when loaded.
@pytest.mark.timeout(900)
async def test_poll_now_wakes_a_slow_poll(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    # Not ready until the workflow waits for it (made ready below, so a slow first fetch cannot
    # find it ready already); with hour-long poll intervals only poll_now can move it.
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client,
            task_queue,
            order_id,
            poll_initial_interval=timedelta(hours=1),
            poll_max_interval=timedelta(hours=1),
            # A retry delay past the wait's deadline would end the wait at once: keep it inside.
            ready_timeout=timedelta(hours=3),
        )
        await wait_stage(handle, Stage.AWAITING_ORDER)
        await admin.patch_order(order_id, ready_after_seconds=0)
        await admin.wait_for(
            order_id,
            lambda v: (
                v.data.get("depositAddress") is not None
                and v.data.get("payAmount", {}).get("amount") is not None
            ),
            what="ready",
        )
        # poll_now moves each step: ready (then pay), pending, settled. Re-sent every 10 s in
        # case one came while the order was not waiting (a busy worker answers late).
        for step in (Stage.TRACKING, Stage.SETTLED):
            async with asyncio.timeout(360):
                while (await handle.query("state", result_type=SellOrderState)).stage is not step:
                    await poll_now_unless_closed(handle)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wait_stage(handle, step), timeout=10)
        result = await handle.result()
    assert result.outcome is Stage.SETTLED


async def poll_now_unless_closed(handle: WorkflowHandle[Any, Any]) -> None:
    """The previous poll_now's fetch may settle the order between the state query and this
    signal: then the signal finds the workflow closed (NOT_FOUND) and the next query sees it."""
    try:
        await handle.signal("poll_now")
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise


async def test_starting_twice_at_once_pays_once(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, amount=Decimal("7.5"))
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        first, second = await asyncio.gather(
            start_order(dev_env.client, task_queue, order_id),
            start_order(dev_env.client, task_queue, order_id),
        )
        assert first.id == second.id
        assert (await first.result()).outcome is Stage.SETTLED
        # Once it ended, a third start returns the same (closed) workflow: no new run.
        third = await start_order(dev_env.client, task_queue, order_id)
        assert (await third.describe()).run_id == (await first.describe()).run_id
    assert sc.token_transfers_to(deposit) == [7_500_000]


def list_needing_attention(client: Client, order_id: str) -> str:
    address = client.service_client.config.target_host
    out = subprocess.run(
        [
            str(temporal_cli()),
            "workflow",
            "list",
            "--address",
            address,
            "--namespace",
            client.namespace,
            "--query",
            f"NeedsAttention=true AND OrderId='{order_id}'",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout


async def test_provider_failure_after_sending_needs_attention(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, scenario="provider_failure")
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        result = await handle.result()
    assert result.outcome is Stage.PROVIDER_FAILED
    assert result.needs_attention
    assert sc.token_transfers_to(deposit) == [10 * 10**6]
    # Visibility is eventually consistent: ask again, a bounded number of times.
    for _ in range(150):
        if handle.id in list_needing_attention(dev_env.client, order_id):
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("the order never showed up under NeedsAttention=true")


async def test_a_waiting_poll_shows_as_a_wait_without_a_stack_trace(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    # What the Web UI shows of a waiting order: its pending wait activity and the last attempt's
    # failure. "Not ready yet" must read as a wait (BENIGN, no traceback), not as an error.
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_ORDER)
        async with asyncio.timeout(120):
            while True:
                pending = (await handle.describe()).raw_description.pending_activities
                waits = [p for p in pending if p.attempt >= 2 and p.HasField("last_failure")]
                if waits:
                    break
                await asyncio.sleep(0.2)
        failure = waits[0].last_failure
        assert failure.message.startswith("waiting (not an error): order "), failure.message
        assert "unchanged" in failure.message
        assert failure.stack_trace == ""
        info = failure.application_failure_info
        assert info.category == ApplicationErrorCategory.APPLICATION_ERROR_CATEGORY_BENIGN
        assert not info.non_retryable
        await handle.terminate("test done")
