"""`finality: "safe"`: a mined payment is confirmed only once the node's `safe` block reaches it
(anvil's safe block lags the head by 32), on top of the configured depth."""

from __future__ import annotations

import uuid
from contextlib import ExitStack

from eth_account import Account
from temporalio.client import Client

from offramp.chain.models import PaymentStage, PaymentStatus
from tests.chain.rpc_nodes import rpc_node
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
)


async def test_safe_finality_waits_for_the_safe_block(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    with ExitStack() as stack:
        node = stack.enter_context(rpc_node(chain.local.rpc_url))
        config = chain.config(rpc_urls=[node.url], finality="safe")
        recipient = Account.create().address
        async with payment_worker(dev_client, task_queue, {CHAIN: config}):
            request = payment_request(f"safe-{uuid.uuid4()}", recipient, "USDC", "2")
            handle = await start_payment(dev_client, task_queue, request)

            async def mined_and_waiting() -> bool:
                state = await payment_state(handle)
                if state.stage is not PaymentStage.CONFIRMING or not state.attempts:
                    return False
                receipt = chain.rpc("eth_getTransactionReceipt", [state.attempts[0].tx_hash])
                return receipt is not None and node.block_tags["safe"] >= 3

            await wait_for(mined_and_waiting, "the mined payment to poll the safe block")
            assert chain.token_balance(recipient) == 2_000_000  # on chain, one block deep
            assert (await payment_state(handle)).outcome is None  # but not yet safe
            chain.mine(40)
            outcome = await handle.result()
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    safe = chain.rpc("eth_getBlockByNumber", ["safe", False])
    assert outcome.block_number is not None and outcome.block_number <= int(safe["number"], 16)
