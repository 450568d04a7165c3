"""Token and native orders reach SETTLED with exactly one on-chain transfer of the exact amount."""

from __future__ import annotations

from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from offramp.orders.models import SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)


async def test_token_order_settles_with_one_exact_transfer(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, asset="USDC", amount=Decimal("123.456789"))
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        result = await handle.result()
        state = await handle.query("state", result_type=SellOrderState)

    assert result.outcome is Stage.SETTLED, result.reason
    assert result.amount == Decimal("123.456789")
    assert result.amount_base_units == 123_456_789
    assert sc.token_transfers_to(deposit) == [123_456_789]
    assert result.confirmed_tx_hash is not None and result.tx_hashes == [result.confirmed_tx_hash]
    assert state.provider_statuses[-1] == "settled"
    # The payment's outcome names its transaction and nonce (its fees are in the payment's own
    # state: a happy payment sends the order no progress, quiet-progress).
    [attempt] = state.tx_attempts
    assert attempt.tx_hash == result.confirmed_tx_hash and attempt.status == "mined"
    assert attempt.nonce is not None
    stages = [e.stage for e in state.timeline]
    assert stages.index(Stage.FUNDING) < stages.index(Stage.TRACKING)
    assert [e.stage for e in state.timeline if e.stage.is_terminal] == [Stage.SETTLED]


async def test_native_order_settles_with_one_exact_transfer(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, asset="ETH", amount=Decimal("0.012345678901234567"))
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        result = await handle.result()

    assert result.outcome is Stage.SETTLED, result.reason
    assert result.amount_base_units == 12_345_678_901_234_567
    assert sc.native_transfers_to(deposit) == [12_345_678_901_234_567]
    assert sc.w3.eth.get_balance(deposit) == 12_345_678_901_234_567
