"""One native and one token payment through a real worker on a private anvil: the happy path,
the outcome's fields, and no key in the histories."""

from __future__ import annotations

from decimal import Decimal

from eth_account import Account
from temporalio.client import Client
from temporalio.worker import Replayer

from offramp.chain.models import PaymentRequest, PaymentStatus, payment_workflow_id
from offramp.converter import DATA_CONVERTER
from tests.chain.support import (
    CHAIN,
    PayChain,
    assert_no_key_in_histories,
    payment_worker,
    start_payment,
    wallet_id,
)
from workflows.hot_wallet import HotWalletWorkflow
from workflows.payment import NonceFillWorkflow, PaymentWorkflow


async def test_native_and_token_payment(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    alice = Account.create().address
    bob = Account.create().address
    start_nonce = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        eth = await start_payment(
            dev_client,
            task_queue,
            PaymentRequest(
                payment_id="basic-eth",
                chain=CHAIN,
                asset="ETH",
                recipient=alice,
                amount=Decimal("0.125"),
            ),
        )
        usdc = await start_payment(
            dev_client,
            task_queue,
            PaymentRequest(
                payment_id="basic-usdc",
                chain=CHAIN,
                asset="USDC",
                recipient=bob.lower(),
                amount=Decimal("12.345678"),
            ),
        )
        eth_out = await eth.result()
        usdc_out = await usdc.result()
    assert eth_out.status is PaymentStatus.CONFIRMED, eth_out
    assert usdc_out.status is PaymentStatus.CONFIRMED, usdc_out
    assert chain.eth_balance(alice) == 125 * 10**15
    assert chain.token_balance(bob) == 12_345_678
    assert usdc_out.amount_base_units == 12_345_678
    assert usdc_out.recipient == bob
    assert {eth_out.nonce, usdc_out.nonce} == {start_nonce, start_nonce + 1}
    assert chain.nonce() == start_nonce + 2
    for out in (eth_out, usdc_out):
        assert out.tx_hash and out.tx_hashes == [out.tx_hash]
        assert out.block_number and out.block_hash and out.fee_paid_wei
    await assert_no_key_in_histories(
        dev_client,
        [payment_workflow_id("basic-eth"), payment_workflow_id("basic-usdc"), wallet_id(chain)],
    )
    # The recorded histories replay against the code (determinism).
    replayer = Replayer(
        workflows=[PaymentWorkflow, NonceFillWorkflow, HotWalletWorkflow],
        data_converter=DATA_CONVERTER,
    )
    for handle in (eth, usdc):
        await replayer.replay_workflow(await handle.fetch_history())
