"""Funds are reserved before a nonce is given (issue 11, item 4), and chain reads never lower
the nonce (item 5), on a real worker, dev server and a private anvil.

The race: the wallet covers one of two concurrent payments. Both pass the preflight (each alone
fits); the entity admits one, holds the other without a nonce (NeedsAttention "insufficient
funds"), and admits it by itself once the wallet is topped up; nonces stay contiguous."""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from temporalio.client import Client, WorkflowHandle

from offramp.chain.models import (
    PaymentOutcome,
    PaymentStage,
    PaymentState,
    PaymentStatus,
    RejectionCode,
    WalletNonces,
    WalletSummary,
)
from offramp.devstack.chain import DEPLOYER, HOT_WALLET, HOT_WALLET_KEY, _send, mint, token_contract
from tests.chain.rpc_proxy import RpcProxy, rpc_proxy
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
    wallet_id,
)
from workflows.hot_wallet import HotWalletWorkflow


def set_token_balance(chain: PayChain, base_units: int) -> None:
    """Leave exactly `base_units` of the token in the hot wallet (the rest to the deployer)."""
    excess = chain.token_balance(HOT_WALLET) - base_units
    assert excess >= 0
    data = token_contract(chain.w3, chain.token).functions.transfer(DEPLOYER, excess)
    _send(chain.w3, HOT_WALLET_KEY, {"to": chain.token, "data": data._encode_transaction_data()})


async def held_for_funds(handle: WorkflowHandle[Any, Any]) -> PaymentState:
    async def waiting() -> PaymentState | None:
        state = await payment_state(handle)
        reason = state.attention_reason or ""
        return state if state.needs_attention and "insufficient funds" in reason else None

    return await wait_for(waiting, "a payment held for funds")


async def race(
    client: Client, task_queue: str, chain: PayChain, asset: str, amount: str
) -> tuple[list[WorkflowHandle[Any, PaymentOutcome]], PaymentOutcome, WorkflowHandle[Any, Any]]:
    """Start two payments at once; return both handles, the paid outcome and the held one."""
    handles = [
        await start_payment(
            client,
            task_queue,
            payment_request(
                f"race-{asset}-{i}-{chain.chain_id}", Account.create().address, asset, amount
            ),
        )
        for i in range(2)
    ]

    async def one_paid() -> tuple[int, PaymentState] | None:
        for i, h in enumerate(handles):
            state = await payment_state(h)
            if state.stage is PaymentStage.DONE:
                return i, state
        return None

    paid_index, _ = await wait_for(one_paid, "one of the two payments", limit=60)
    held = handles[1 - paid_index]
    state = await held_for_funds(held)
    assert state.stage is PaymentStage.RESERVING and not state.nonce_reserved
    assert state.nonce is None and state.attempts == []
    return handles, await handles[paid_index].result(), held


async def test_token_funds_race_holds_the_second_until_a_top_up(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    set_token_balance(chain, 100 * 10**6)  # 100 USDC, two orders of 60
    start_nonce = chain.nonce()
    config = chain.config(funds_recheck_seconds=0.5)
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        handles, paid, held = await race(dev_client, task_queue, chain, "USDC", "60")
        assert paid.status is PaymentStatus.CONFIRMED and paid.nonce == start_nonce
        assert chain.nonce() == start_nonce + 1  # the held one has no nonce and sent nothing
        mint(chain.w3, chain.token, HOT_WALLET, 100 * 10**6)  # the top-up
        late = await held.result()  # proceeds by itself
        state = await payment_state(held)
    assert late.status is PaymentStatus.CONFIRMED and late.nonce == start_nonce + 1
    assert not state.needs_attention  # cleared once the nonce was given
    assert chain.nonce() == start_nonce + 2
    assert chain.token_balance(late.recipient) == 60 * 10**6
    assert len(handles) == 2


async def test_native_funds_race_holds_the_second_until_a_top_up(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    # 1.2 ETH: each 0.7 ETH payment fits alone (with its gas budget), both together do not.
    chain.rpc("anvil_setBalance", [HOT_WALLET, hex(12 * 10**17)])
    start_nonce = chain.nonce()
    config = chain.config(funds_recheck_seconds=0.5)
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        _, paid, held = await race(dev_client, task_queue, chain, "ETH", "0.7")
        assert paid.status is PaymentStatus.CONFIRMED and paid.nonce == start_nonce
        chain.rpc("anvil_setBalance", [HOT_WALLET, hex(10 * 10**18)])  # the top-up
        late = await held.result()
    assert late.status is PaymentStatus.CONFIRMED and late.nonce == start_nonce + 1
    assert chain.nonce() == start_nonce + 2
    assert chain.eth_balance(late.recipient) == 7 * 10**17


async def test_insufficient_funds_can_be_configured_to_reject(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    chain.rpc("anvil_setBalance", [HOT_WALLET, hex(12 * 10**17)])
    start_nonce = chain.nonce()
    config = chain.config(on_insufficient_funds="reject", funds_recheck_seconds=0.5)
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        handles = [
            await start_payment(
                dev_client,
                task_queue,
                payment_request(
                    f"rej-{i}-{chain.chain_id}", Account.create().address, "ETH", "0.7"
                ),
            )
            for i in range(2)
        ]
        outcomes = sorted([await h.result() for h in handles], key=lambda o: o.status.value)
    confirmed, rejected = outcomes
    assert confirmed.status is PaymentStatus.CONFIRMED and confirmed.nonce == start_nonce
    assert rejected.status is PaymentStatus.REJECTED
    assert rejected.rejection_code is RejectionCode.INSUFFICIENT_BALANCE
    assert not rejected.nonce_reserved and rejected.tx_hashes == []
    assert chain.nonce() == start_nonce + 1


class LaggingNode(RpcProxy):
    """Answers eth_getTransactionCount `lag` lower than the chain (a node behind the others)."""

    lag = 0

    def handle(self, body: bytes) -> bytes:
        answer = super().handle(body)
        call = json.loads(body)
        if self.lag and isinstance(call, dict) and call.get("method") == "eth_getTransactionCount":
            result = json.loads(answer)
            result["result"] = hex(max(0, int(result["result"], 16) - self.lag))
            return json.dumps(result).encode()
        return answer


async def test_a_lagging_node_never_lowers_the_nonce_nor_reuses_one(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    with rpc_proxy(chain.local.rpc_url) as proxy:
        proxy.__class__ = LaggingNode  # same state, lagging answers when asked to
        node: LaggingNode = proxy  # type: ignore[assignment]
        start_nonce = chain.nonce()
        config = chain.config(rpc_url=proxy.url)
        async with payment_worker(dev_client, task_queue, {CHAIN: config}):

            async def pay(tag: str) -> PaymentOutcome:
                request = payment_request(
                    f"lag-{tag}-{chain.chain_id}", Account.create().address, "ETH", "0.01"
                )
                return await (await start_payment(dev_client, task_queue, request)).result()

            first = [await pay(f"a{i}") for i in range(3)]
            node.lag = 3  # nothing in flight, and the node says we are 3 behind
            wallet = dev_client.get_workflow_handle_for(HotWalletWorkflow.run, wallet_id(chain))
            summary: WalletSummary = await wallet.execute_update(
                "reconcile", result_type=WalletSummary
            )
            assert summary.next_nonce == start_nonce + 3  # not lowered
            assert summary.nonce_behind == WalletNonces(latest=start_nonce, pending=start_nonce)
            assert any("NOT lowering" in line for line in summary.attention)
            later = [await pay(f"b{i}") for i in range(2)]
    outcomes = first + later
    assert [o.status for o in outcomes] == [PaymentStatus.CONFIRMED] * 5
    assert [o.nonce for o in outcomes] == list(range(start_nonce, start_nonce + 5))
    assert chain.nonce() == start_nonce + 5  # every payment mined: no nonce was used twice
