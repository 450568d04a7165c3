"""The order workflow's payment: start the Payment child exactly once (or follow the one that
exists), record its outcome, and hold for a person when a payment ended without one."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from offramp import search_attributes as sa
    from offramp.chain import names as chain_names
    from offramp.chain.models import (
        PaymentOutcome,
        PaymentRequest,
        PaymentStatus,
        payment_workflow_id,
    )
    from offramp.orders import names
    from offramp.orders.models import (
        PaymentOutcomeQuery,
        PaymentPlan,
        RejectReason,
        Stage,
        order_payment_id,
    )

from workflows.order.failures import failure_type, workflow_cancel
from workflows.order.patches import PATCH_WALLET_FROM_OUTCOME, PATCH_WORKFLOW_CANCEL
from workflows.order.state import OrderState

# The payment child is idempotent by payment id (the hot wallet hands one nonce per id), so a
# failed run may be retried safely; it is never abandoned while a transaction may exist.
PAYMENT_RETRY: Final = RetryPolicy(maximum_interval=timedelta(minutes=10), maximum_attempts=0)


class OrderPayment(OrderState):
    def _payment_id(self, order_id: str) -> str:
        """The payment id of the provider's order `order_id` (as the provider answered it)."""
        return order_payment_id(self._input.provider, order_id)

    async def _pay(self, plan: PaymentPlan) -> PaymentOutcome | None:
        # FUNDING is set before the child is started, so a cancel arriving from here on is refused.
        self._set_stage(Stage.FUNDING, "reserving a nonce and sending")
        payment_id = self._payment_id(plan.order_id)
        workflow_id = payment_workflow_id(payment_id)
        try:
            outcome = await self._start_payment(plan, payment_id)
        except WorkflowAlreadyStartedError:
            # A payment for this order exists already (e.g. this workflow was reset): follow it,
            # never start another.
            self._note(f"following the existing payment {workflow_id}")
            outcome = await self._existing_payment(workflow_id)
        return outcome

    def _conclude_payment(self, outcome: PaymentOutcome) -> bool:
        """Record the payment's outcome; True when it confirmed (the order is then followed)."""
        self._wallet_that_paid(outcome)
        self._record_payment(outcome)
        if outcome.status is PaymentStatus.CONFIRMED:
            self._set_stage(Stage.TRACKING, f"confirmed in block {outcome.block_number}")
            return True
        if outcome.status is PaymentStatus.REJECTED:
            # One vocabulary: the payment's refusal is the order's.
            self._reject(
                outcome.rejection_code or RejectReason.PAYMENT_REJECTED, outcome.reason or ""
            )
        elif outcome.status is PaymentStatus.CANCELLED:
            self._set_stage(Stage.CANCELLED, outcome.reason or "payment cancelled before signing")
        elif outcome.status is PaymentStatus.REVERTED:
            self._attention(f"transaction {outcome.tx_hash} reverted")
            self._set_stage(Stage.TX_REVERTED, outcome.reason or "the transfer reverted")
        else:
            self._attention(f"payment ended {outcome.status.value}: {outcome.reason}")
            self._set_stage(Stage.UNRESOLVED, outcome.reason or outcome.status.value)
        return False

    def _wallet_that_paid(self, outcome: PaymentOutcome) -> None:
        """A pool's other wallet reserved: the order shows it (its progress no longer says so).
        The condition comes first: a run whose planned wallet paid carries no patch marker."""
        plan = self._state.plan
        wallet = outcome.hot_wallet
        if plan is None or not wallet or wallet == plan.hot_wallet:
            return
        if not workflow.patched(PATCH_WALLET_FROM_OUTCOME):
            return
        self._state.plan = plan.model_copy(update={"hot_wallet": wallet})
        self._upsert(sa.HOT_WALLET.value_set(wallet))

    async def _start_payment(self, plan: PaymentPlan, payment_id: str) -> PaymentOutcome | None:
        workflow_id = payment_workflow_id(payment_id)
        try:
            outcome: PaymentOutcome = await workflow.execute_child_workflow(
                chain_names.PAYMENT_WORKFLOW,
                PaymentRequest(
                    payment_id=payment_id,
                    chain=plan.chain,
                    asset=plan.asset,
                    recipient=plan.deposit_address,
                    amount=plan.amount,
                    expected_token_address=plan.token_address,
                    progress_signal=names.PAYMENT_PROGRESS_SIGNAL,
                    pay_before=plan.pay_before,
                ),
                id=workflow_id,
                result_type=PaymentOutcome,
                parent_close_policy=ParentClosePolicy.ABANDON,
                # Never a second payment workflow for an order, even after this one closed.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                retry_policy=PAYMENT_RETRY,
                static_summary=(
                    f"pay {plan.amount} {plan.asset} for {self._adapter.title} order "
                    f"{plan.order_id}"
                ),
            )
        except ChildWorkflowError as err:
            await self._hold_for_a_person(workflow_id, str(err.cause or err))
            return None
        return outcome

    async def _existing_payment(
        self, payment_workflow: str, *, missing_ok: bool = False
    ) -> PaymentOutcome | None:
        """The outcome of a payment workflow this run did not start (waits until it closes);
        None if `missing_ok` and there is none. A workflow cancel does not stop the look: a
        transaction may exist, and only the answer tells."""
        while True:
            try:
                outcome: PaymentOutcome | None = await workflow.execute_activity(
                    names.PAYMENT_OUTCOME_ACTIVITY,
                    PaymentOutcomeQuery(workflow_id=payment_workflow, missing_ok=missing_ok),
                    result_type=PaymentOutcome | None,  # type: ignore[arg-type]
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(
                        maximum_interval=timedelta(minutes=1),
                        maximum_attempts=0,
                        non_retryable_error_types=[names.PAYMENT_CLOSED_WITHOUT_OUTCOME],
                    ),
                    summary=f"wait for the outcome of {payment_workflow}",
                )
            except ActivityError as err:
                if workflow_cancel(err) and workflow.patched(PATCH_WORKFLOW_CANCEL):
                    self._note(
                        "workflow cancel requested while looking for an earlier payment: "
                        "the look is finished first"
                    )
                    continue
                await self._hold_for_a_person(payment_workflow, failure_type(err)[1])
                return None
            return outcome

    async def _hold_for_a_person(self, payment_workflow: str, why: str) -> None:
        """The payment workflow ended without an outcome (terminated or failed): a transaction
        may exist and only a person can tell. Flag it and never end the order on our own."""
        self._attention(
            f"payment {payment_workflow} ended without an outcome ({why}); find its transaction "
            "(hot wallet nonce, tx hashes in the state query) and settle the order by hand"
        )
        await workflow.wait_condition(lambda: False)
