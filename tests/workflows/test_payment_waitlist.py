"""Payments beyond the hot wallet's queue wait on its waitlist and are called back when the
queue has room, instead of backing off alone (30 s doubling: at 2,000 orders 234 payments slept
16 minutes while the queue stood empty). Real payments on anvil, an entity with a queue of 2."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account import Account
from temporalio.client import Client, WorkflowHandle

from activities.chain import tuning_of
from offramp.chain.models import (
    HotWalletInput,
    HotWalletLimits,
    HotWalletParams,
    HotWalletState,
    PaymentOutcome,
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    payment_workflow_id,
)
from offramp.devstack.chain import HOT_WALLET
from tests.chain.support import CHAIN, PayChain, payment_worker, start_payment, wait_for, wallet_id

PAYMENTS = 8
QUEUE_LIMIT = 2
LIMIT_SECONDS = 300.0  # a bound against a hang only: the behaviour is read from the events


@dataclass
class QueueOfTwo:
    entity: WorkflowHandle[Any, Any]
    requests: list[PaymentRequest]
    outcomes: list[PaymentOutcome]
    states: list[PaymentState]  # each payment's, after it ended
    wallet: HotWalletState  # the entity's, after the last payment

    def called_back(self) -> list[str]:
        """Payment ids of those the entity called back."""
        return [
            r.payment_id
            for r, s in zip(self.requests, self.states, strict=True)
            if any("called back" in e for e in s.events)
        ]


async def pay_through_a_queue_of_two(
    client: Client, task_queue: str, chain: PayChain, payments: int = PAYMENTS
) -> QueueOfTwo:
    """`payments` concurrent USDC payments through an entity (started first, with a queue of 2
    and 1 in flight); the entity is left running for the caller to read and stop."""
    config = chain.config(in_flight_limit=1)
    params = HotWalletParams(
        chain=CHAIN,
        chain_id=chain.chain_id,
        address=HOT_WALLET,
        tuning=tuning_of(config),
        limits=HotWalletLimits(queue_limit=QUEUE_LIMIT, call_back_timeout_seconds=300),
    )
    requests = [
        PaymentRequest(
            payment_id=f"waitlist-{chain.chain_id}-{i}",
            chain=CHAIN,
            asset="USDC",
            recipient=Account.create().address,
            amount=Decimal(f"1.00000{i}"),
        )
        for i in range(payments)
    ]
    async with payment_worker(client, task_queue, {CHAIN: config}):
        entity = await client.start_workflow(
            "HotWallet", HotWalletInput(params=params), id=wallet_id(chain), task_queue=task_queue
        )

        async def reconciled() -> bool:
            state = await entity.query("state", result_type=HotWalletState)
            return state.next_nonce is not None

        await wait_for(reconciled, "the entity's first reconcile")
        handles = await asyncio.gather(*(start_payment(client, task_queue, r) for r in requests))
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), timeout=LIMIT_SECONDS
        )
        states = [
            await client.get_workflow_handle(payment_workflow_id(r.payment_id)).query(
                "state", result_type=PaymentState
            )
            for r in requests
        ]
        wallet = await entity.query("state", result_type=HotWalletState)
    return QueueOfTwo(entity, requests, list(outcomes), states, wallet)


async def test_payments_beyond_a_full_queue_are_called_back_and_each_pays_once(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    start_nonce = chain.nonce()
    run = await pay_through_a_queue_of_two(dev_client, task_queue, chain)
    await run.entity.terminate("test done")
    assert [o.status for o in run.outcomes] == [PaymentStatus.CONFIRMED] * PAYMENTS
    nonces = sorted(o.nonce for o in run.outcomes if o.nonce is not None)
    assert nonces == list(range(start_nonce, start_nonce + PAYMENTS)), "nonces not contiguous"
    assert chain.nonce() == start_nonce + PAYMENTS, "something was paid twice"
    # 8 payments, 1 in flight, 2 queued: at least 5 were turned away, waitlisted, called back.
    assert len(run.called_back()) >= PAYMENTS - QUEUE_LIMIT - 1, [s.events for s in run.states]
    assert run.wallet.waitlist == {}
