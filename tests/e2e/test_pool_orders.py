"""Orders paid from a pool of two hot wallets (whole engine, dev server, anvil, Kado simulator):
the order shows, in its state and its HotWallet search attribute, the wallet that actually
reserved (not the pool's first); an order that waited for funds (NeedsAttention "insufficient
funds") is cleared once the top-up lets its payment take a nonce, and settles paid once."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offramp import search_attributes as sa
from offramp.devstack.chain import DEPLOYER, POOL_KEYS, POOL_WALLETS, _send, mint, token_contract
from offramp.orders.models import SellOrderState, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.chain.support import wait_for
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    start_order,
)

A, B = POOL_WALLETS[:2]


def leave_tokens(sc: SellChain, wallet: str, base_units: int) -> None:
    """Leave exactly `base_units` of the token in `wallet`."""
    excess = sc.chain.token_balance(wallet) - base_units
    if excess > 0:
        key = POOL_KEYS[POOL_WALLETS.index(wallet)]
        data = token_contract(sc.w3, sc.token).functions.transfer(DEPLOYER, excess)
        _send(sc.w3, key, {"to": sc.token, "data": data._encode_transaction_data()})
    elif excess < 0:
        mint(sc.w3, sc.token, wallet, -excess)


def pool_settings(sc: SellChain, task_queue: str) -> Any:
    settings = engine_settings(sc, task_queue, hot_wallets=[A, B], funds_recheck_seconds=0.5)
    return settings.model_copy(update={"hot_wallet_private_keys": SecretStr(POOL_KEYS[1])})


async def order_state(handle: WorkflowHandle[Any, Any]) -> SellOrderState:
    state: SellOrderState = await handle.query("state", result_type=SellOrderState)
    return state


async def search_attributes(handle: WorkflowHandle[Any, Any]) -> Any:
    return (await handle.describe()).typed_search_attributes


async def test_the_order_names_the_pool_wallet_that_paid(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    leave_tokens(sc, A, 0)  # the pool's first wallet cannot pay: B does
    leave_tokens(sc, B, 1_000 * 10**6)
    order_id = await create_sim_order(admin)
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, pool_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)
        result = await handle.result()
        state = await order_state(handle)
    assert result.outcome is Stage.SETTLED, result
    assert state.plan is not None and state.plan.hot_wallet == B
    assert (await search_attributes(handle)).get(sa.HOT_WALLET) == B
    assert sc.token_transfers_to(deposit) == [10 * 10**6]


async def test_an_order_that_waited_for_funds_is_cleared_and_paid_once(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    leave_tokens(sc, A, 5 * 10**6)
    leave_tokens(sc, B, 20 * 10**6)  # the best-funded; the order is 50
    order_id = await create_sim_order(admin, amount="50")
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(dev_env.client, pool_settings(sc, task_queue)):
        handle = await start_order(dev_env.client, task_queue, order_id)

        async def flagged() -> SellOrderState | None:
            state = await order_state(handle)
            return state if state.needs_attention else None

        waiting = await wait_for(flagged, "the order flagged for funds", limit=60)
        assert waiting.stage is Stage.FUNDING and waiting.tx_hashes == []
        assert "insufficient funds" in (waiting.attention_reason or "")
        assert waiting.plan is not None and waiting.plan.hot_wallet == B
        attributes = await search_attributes(handle)
        assert attributes.get(sa.NEEDS_ATTENTION) is True
        assert attributes.get(sa.HOT_WALLET) == B
        assert sc.token_transfers_to(deposit) == []
        mint(sc.w3, sc.token, B, 30 * 10**6)  # the top-up
        result = await handle.result()
        state = await order_state(handle)
    assert result.outcome is Stage.SETTLED, result
    assert not result.needs_attention and not state.needs_attention
    assert state.attention_reason is None
    assert any("attention cleared" in (entry.note or "") for entry in state.timeline)
    assert (await search_attributes(handle)).get(sa.NEEDS_ATTENTION) is False
    assert sc.token_transfers_to(deposit) == [50 * 10**6]
