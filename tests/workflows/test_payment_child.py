"""How an order workflow uses the payment: one child workflow step, progress signals telling it
when a nonce is reserved (from then on a tx may exist), and the outcome."""

from __future__ import annotations

import uuid
from decimal import Decimal

from eth_account import Account
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client

from activities.chain import ChainActivities
from activities.hot_wallet import HotWalletActivities
from offramp.chain.models import (
    PaymentOutcome,
    PaymentProgress,
    PaymentRequest,
    PaymentStatus,
    payment_workflow_id,
)
from offramp.chain.rpc import ChainRuntime
from tests.chain.support import CHAIN, PayChain, both_queues, payment_settings
from workflows.hot_wallet import HotWalletWorkflow
from workflows.payment import NonceFillWorkflow, PaymentWorkflow


class OrderResult(BaseModel):
    outcome: PaymentOutcome
    progress: list[PaymentProgress]


@workflow.defn(name="FakeOrder", sandboxed=False)
class FakeOrder:
    """Stands in for the sell-order workflow."""

    def __init__(self) -> None:
        self.progress: list[PaymentProgress] = []

    @workflow.signal
    def payment_progress(self, progress: PaymentProgress) -> None:
        self.progress.append(progress)

    @workflow.run
    async def run(self, request: PaymentRequest) -> OrderResult:
        outcome = await workflow.execute_child_workflow(
            PaymentWorkflow.run,
            request.model_copy(update={"progress_signal": "payment_progress"}),
            id=payment_workflow_id(request.payment_id),
            # The payment outlives its order: a tx that may exist is always followed to its fate.
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"pay {request.amount} {request.asset} to {request.recipient}",
        )
        return OrderResult(outcome=outcome, progress=self.progress)


async def test_order_runs_the_payment_as_a_child(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    runtime = await ChainRuntime.create(payment_settings(task_queue, {CHAIN: chain.config()}))
    recipient = Account.create().address
    try:
        async with both_queues(
            dev_client,
            task_queue,
            [FakeOrder, PaymentWorkflow, NonceFillWorkflow, HotWalletWorkflow],
            [*ChainActivities(runtime).all(), *HotWalletActivities(runtime).all()],
        ):
            order_id = f"order-{uuid.uuid4().hex[:8]}"
            paid = await dev_client.execute_workflow(
                FakeOrder.run,
                PaymentRequest(
                    payment_id=order_id,
                    chain=CHAIN,
                    asset="USDC",
                    recipient=recipient,
                    amount=Decimal("3.5"),
                ),
                id=f"fake-order-{order_id}",
                task_queue=task_queue,
            )
            rejected = await dev_client.execute_workflow(
                FakeOrder.run,
                PaymentRequest(
                    payment_id=f"{order_id}-bad",
                    chain=CHAIN,
                    asset="USDC",
                    recipient="0x1234",
                    amount=Decimal("1"),
                ),
                id=f"fake-order-{order_id}-bad",
                task_queue=task_queue,
            )
    finally:
        await runtime.aclose()
    assert paid.outcome.status is PaymentStatus.CONFIRMED
    # quiet-progress: a payment that never needs a person tells its parent nothing on the way
    # (each signal is billed); its outcome says it all.
    assert paid.progress == []
    assert paid.outcome.tx_hashes == [paid.outcome.tx_hash] and paid.outcome.nonce is not None
    assert chain.token_balance(recipient) == 3_500_000
    assert rejected.outcome.status is PaymentStatus.REJECTED
    assert not rejected.outcome.nonce_reserved and rejected.progress == []
