"""A payment run again under the same payment id (a retried or restarted child) never pays twice:
it takes the same nonce and follows the transactions the earlier run signed (recorded by the hot
wallet), even when the balances would now refuse a new payment."""

from __future__ import annotations

from decimal import Decimal

from eth_account import Account
from temporalio.client import Client

from offramp.chain.models import PaymentRequest, PaymentState, PaymentStatus
from offramp.devstack.chain import HOT_WALLET
from tests.chain.support import (
    CHAIN,
    PayChain,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
)


async def test_second_run_after_confirmation_returns_the_same_payment(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    recipient = Account.create().address
    request = PaymentRequest(
        payment_id=f"again-{chain.chain_id}",
        chain=CHAIN,
        asset="ETH",
        recipient=recipient,
        amount=Decimal("2"),
    )
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        first = await (await start_payment(dev_client, task_queue, request)).result()
        chain.rpc("anvil_setBalance", [HOT_WALLET, hex(10**16)])  # a fresh payment: refused
        handle = await start_payment(dev_client, task_queue, request)
        second = await handle.result()
        state = await payment_state(handle)
    assert first.status is PaymentStatus.CONFIRMED
    assert second.status is PaymentStatus.CONFIRMED
    assert (second.nonce, second.tx_hash) == (first.nonce, first.tx_hash)
    assert chain.eth_balance(recipient) == 2 * 10**18  # paid once
    assert any("resuming" in e for e in state.events)


async def test_run_terminated_after_broadcast_is_resumed_by_the_next_run(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    recipient = Account.create().address
    start_nonce = chain.nonce()
    request = PaymentRequest(
        payment_id=f"resume-{chain.chain_id}",
        chain=CHAIN,
        asset="USDC",
        recipient=recipient,
        amount=Decimal("9.99"),
    )
    chain.set_automine(False)
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        first = await start_payment(dev_client, task_queue, request)

        async def broadcast() -> PaymentState | None:
            state = await payment_state(first)
            return state if state.attempts else None

        tx_hash = (await wait_for(broadcast, "the broadcast")).attempts[0].tx_hash
        await first.terminate("simulated loss of the run")
        second = await start_payment(dev_client, task_queue, request)

        async def resumed() -> PaymentState | None:
            state = await payment_state(second)
            return state if state.attempts else None

        state = await wait_for(resumed, "the second run to adopt the signed tx")
        assert state.tx_hashes == [tx_hash]
        chain.set_automine(True)
        chain.mine()
        outcome = await second.result()
    assert outcome.status is PaymentStatus.CONFIRMED
    assert outcome.tx_hash == tx_hash and outcome.tx_hashes == [tx_hash]
    assert outcome.nonce == start_nonce and chain.nonce() == start_nonce + 1
    assert chain.token_balance(recipient) == 9_990_000
