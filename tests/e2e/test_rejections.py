"""Each bad order ends REJECTED with its own reason: zero transfers, no nonce consumed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.chain import HOT_WALLET
from offramp.orders.models import RejectReason, SellOrderResult, Stage
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.faults import FaultConfig
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    new_order_id,
    start_order,
)

OTHER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"

# (simulator order fields, start fields, expected reason)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], RejectReason]] = {
    "buy order": ({"order_type": "buy"}, {}, RejectReason.NOT_A_SELL_ORDER),
    "userRef mismatch": ({"user_ref": "someone-else"}, {}, RejectReason.USER_REF_MISMATCH),
    "unsupported chain": (
        {"overrides": {"blockchain": "solana"}},
        {},
        RejectReason.UNSUPPORTED_CHAIN,
    ),
    "token address mismatch": (
        {"overrides": {"cryptoCurrency": {"address": OTHER}}},
        {},
        RejectReason.TOKEN_ADDRESS_MISMATCH,
    ),
    "more decimals than the token": (
        {"overrides": {"payAmount": {"amount": Decimal("1.0000001")}}},
        {},
        RejectReason.AMOUNT_TOO_PRECISE,
    ),
    "over the per-order cap": ({"amount": Decimal("10000.01")}, {}, RejectReason.OVER_ORDER_CAP),
    "over max_amount": (
        {"amount": Decimal("20")},
        {"max_amount": Decimal("19.999999")},
        RejectReason.OVER_MAX_AMOUNT,
    ),
    "invalid deposit address": (
        {"overrides": {"depositAddress": "0x1234"}},
        {},
        RejectReason.DEPOSIT_ADDRESS_INVALID,
    ),
    "deposit address is our hot wallet": (
        {"overrides": {"depositAddress": HOT_WALLET}},
        {},
        RejectReason.DEPOSIT_ADDRESS_OURS,
    ),
    # Self-consistency: the order's own fields disagree.
    "amount unit names another asset": (
        {"overrides": {"payAmount": {"unit": "ETH"}}},
        {},
        RejectReason.AMOUNT_UNIT_MISMATCH,
    ),
    "asset fields name different assets": (
        {"overrides": {"assetSymbol": "ETH"}},
        {},
        RejectReason.ASSET_SYMBOL_MISMATCH,
    ),
    "token entry claims to be the native coin": (
        {"overrides": {"cryptoCurrency": {"isNative": True}}},
        {},
        RejectReason.NATIVE_FLAG_MISMATCH,
    ),
    "native coin entry claims to be a token": (
        {
            "asset": "ETH",
            "amount": Decimal("0.01"),
            "overrides": {"cryptoCurrency": {"isNative": False}},
        },
        {},
        RejectReason.NATIVE_FLAG_MISMATCH,
    ),
    "crypto already in transit before we paid": (
        {"overrides": {"transferStatus": "pending"}},
        {},
        RejectReason.ORDER_ALREADY_FUNDED,
    ),
    "crypto already settled before we paid": (
        {"overrides": {"transferStatus": "settled", "machineStatusField": "SETTLED"}},
        {},
        RejectReason.ORDER_ALREADY_FUNDED,
    ),
}


async def run_order(
    dev_env: WorkflowEnvironment, sc: SellChain, task_queue: str, order_id: str, **start: Any
) -> SellOrderResult:
    nonce_before = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id, **start)
        result = await handle.result()
    assert sc.hot_wallet_nonce() == nonce_before, "a rejected order consumed a nonce"
    return result


def assert_rejected(result: SellOrderResult, reason: RejectReason) -> None:
    assert result.outcome is Stage.REJECTED, result
    assert result.reject_reason is reason, result.reason
    assert result.reason and result.reason.startswith(reason.value)
    assert result.tx_hashes == [] and result.confirmed_tx_hash is None


@pytest.mark.parametrize("case", sorted(CASES))
async def test_rejected_with_its_reason(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str, case: str
) -> None:
    sim_fields, start_fields, reason = CASES[case]
    order_id = await create_sim_order(admin, **sim_fields)
    deposit = (await admin.order(order_id)).data.get("depositAddress")
    result = await run_order(dev_env, sc, task_queue, order_id, **start_fields)
    assert_rejected(result, reason)
    if isinstance(deposit, str) and len(deposit) == 42 and deposit != HOT_WALLET:
        assert sc.token_transfers_to(deposit) == []


async def test_an_order_in_transit_while_we_wait_is_refused_at_once(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    # Not ready yet, then the provider reports the crypto in transit (not ours: nothing sent):
    # refused at once, not after waiting the ready_timeout out.
    order_id = await create_sim_order(admin, ready_after_seconds=3600)
    nonce_before = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        await admin.wait_for(order_id, lambda v: v.requests >= 1, what="a first fetch")
        await admin.patch_order(order_id, overrides={"transferStatus": "pending"})
        result = await handle.result()
    assert sc.hot_wallet_nonce() == nonce_before
    assert_rejected(result, RejectReason.ORDER_ALREADY_FUNDED)
    assert (result.finished_at - result.started_at) < timedelta(seconds=60)


async def test_unknown_order(dev_env: WorkflowEnvironment, sc: SellChain, task_queue: str) -> None:
    result = await run_order(dev_env, sc, task_queue, new_order_id())
    assert_rejected(result, RejectReason.ORDER_NOT_FOUND)


async def test_expired_order(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, expires_in_seconds=0.2)
    await admin.wait_for(order_id, lambda v: v.phase == "expired", what="expiry")
    result = await run_order(dev_env, sc, task_queue, order_id)
    assert_rejected(result, RejectReason.ORDER_EXPIRED)


async def test_insufficient_hot_wallet_balance(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    balance = sc.w3.eth.get_balance(HOT_WALLET)
    amount = Decimal(balance + 10**18) / Decimal(10**18)
    order_id = await create_sim_order(admin, asset="ETH", amount=amount)
    settings = engine_settings(sc, task_queue)
    eth = (
        settings.chains["anvil"]
        .assets["ETH"]
        .model_copy(update={"per_order_cap": amount * 2, "daily_cap": amount * 2})
    )
    # Reject mode (the default `wait` holds the order for a top-up: tests/e2e/test_pool_orders.py).
    chain = settings.chains["anvil"].model_copy(
        update={
            "assets": {**settings.chains["anvil"].assets, "ETH": eth},
            "on_insufficient_funds": "reject",
        }
    )
    settings = settings.model_copy(update={"chains": {"anvil": chain}})
    nonce_before = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, settings):
        handle = await start_order(dev_env.client, task_queue, order_id)
        result = await handle.result()
    assert sc.hot_wallet_nonce() == nonce_before
    assert_rejected(result, RejectReason.INSUFFICIENT_BALANCE)


async def test_provider_down_until_the_ready_deadline_expires_the_order(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, faults=FaultConfig(error_rate=1.0))
    nonce = sc.hot_wallet_nonce()
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client, task_queue, order_id, ready_timeout=timedelta(seconds=3)
        )
        result = await handle.result()
    assert result.outcome is Stage.EXPIRED, result.reason
    assert result.reason == "the provider did not answer in time"
    assert (await admin.requests_for(order_id)) >= 2
    assert sc.hot_wallet_nonce() == nonce


async def test_a_buy_order_is_rejected_without_waiting_for_it_to_be_ready(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, order_type="buy", ready_after_seconds=3600)
    result = await run_order(dev_env, sc, task_queue, order_id)
    assert_rejected(result, RejectReason.NOT_A_SELL_ORDER)
    assert (result.finished_at - result.started_at).total_seconds() < 60


async def test_an_order_expiring_while_we_wait_ends_expired(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    order_id = await create_sim_order(admin, ready_after_seconds=3600, expires_in_seconds=1.0)
    result = await run_order(dev_env, sc, task_queue, order_id)
    assert result.outcome is Stage.EXPIRED
    assert result.reason == "the provider expired the order before it was ready"
    assert result.tx_hashes == []
