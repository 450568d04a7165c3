"""SellOrderWorkflow: one Kado SELL order from its id to settled, paying exactly once.

RECEIVED → AWAITING_ORDER → VALIDATED → [AWAITING_APPROVAL] → FUNDING → CONFIRMING → TRACKING →
SETTLED, or REJECTED / CANCELLED / EXPIRED before anything is sent, or PROVIDER_FAILED /
TX_REVERTED / UNRESOLVED after. Two invariants (design.md): nothing is sent unless every check
passed; once a transaction could be on chain, the workflow never ends without knowing its fate
(cancel is refused from FUNDING on; the payment child is awaited whatever happens).

Waiting on the provider uses the infrequent-poll activity (`kado_wait_for_order_change`): a wait
of any length costs the same few history events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.exceptions import TimeoutError as ActivityTimeoutError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from offramp import search_attributes as sa
    from offramp.chain.models import (
        PaymentOutcome,
        PaymentProgress,
        PaymentRequest,
        PaymentStatus,
        RejectionCode,
        payment_workflow_id,
    )
    from offramp.kado.models import (
        FETCH_ORDER_ACTIVITY,
        WAIT_FOR_ORDER_CHANGE_ACTIVITY,
        FetchOrderInput,
        KadoOrder,
        TransferStatus,
        WaitForOrderChangeInput,
    )
    from offramp.observability import order_metrics
    from offramp.orders.checks import already_funded_rejection, identity_rejection
    from offramp.orders.models import (
        CHECK_SELL_ORDER_ACTIVITY,
        PAYMENT_CLOSED_WITHOUT_OUTCOME,
        PAYMENT_OUTCOME_ACTIVITY,
        PAYMENT_STAGES,
        WORKFLOW_TYPE,
        CheckResult,
        CheckSellOrderInput,
        Decision,
        OrderFacts,
        PaymentOutcomeQuery,
        PaymentPlan,
        Rejection,
        RejectReason,
        SellOrderInput,
        SellOrderResult,
        SellOrderState,
        Stage,
        TimelineEntry,
        TxAttemptView,
    )
    from offramp.validation import describe as describe_validation_error

from workflows.operator_input import PAYLOAD_DOC, operator_decision

T = TypeVar("T")

PAYMENT_WORKFLOW: Final = "Payment"  # workflows/payment.py
# Workflow patches (workflow.patched): ids of changes made while runs may be open.
PATCH_IDENTITY_FIRST: Final = "identity-check-before-waiting"
PATCH_RECHECK_AFTER_APPROVAL: Final = "recheck-after-approval"
PATCH_FIND_EARLIER_PAYMENT: Final = "find-earlier-payment"
# The provider says the crypto is already in transit: refuse at once (after looking for an
# earlier payment of ours) instead of waiting for readiness until the deadline.
PATCH_ALREADY_FUNDED: Final = "refuse-already-funded"
# A workflow cancel before sending ends CANCELLED (it ended REJECTED provider_refused before).
PATCH_WORKFLOW_CANCEL: Final = "workflow-cancel-ends-cancelled"
# After payment a malformed provider answer is retried until the settlement deadline (it ended
# the order UNRESOLVED at once before).
PATCH_RETRY_MALFORMED_AFTER_PAYMENT: Final = "retry-malformed-after-payment"
# The payment's progress names the wallet that reserved (the order's HotWallet follows it) and
# clears the order's attention once the payment no longer needs it (e.g. funds arrived).
PATCH_PROGRESS_WALLET_AND_ATTENTION: Final = "progress-wallet-and-attention"
# poll_now within this long of starting a fresh poll is ignored: a storm of webhooks must not
# keep cancelling polls before they can answer.
POLL_NOW_MIN_GAP: Final = timedelta(seconds=2)
# A malformed provider response may be a passing glitch: re-fetch this often before rejecting.
MALFORMED_FETCH_ATTEMPTS: Final = 3

# One provider HTTP call (the client's own timeout is 10 s): a worker that died mid-call is
# noticed after this long and the call retried elsewhere.
_PROVIDER_CALL_TIMEOUT = timedelta(seconds=15)
_CHECK_TIMEOUT = timedelta(seconds=10)
_PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
    non_retryable_error_types=["KadoOrderNotFound", "KadoRequestRejected", "KadoMalformedResponse"],
)
_CHECK_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
# The payment child is idempotent by payment id (the hot wallet hands one nonce per id), so a
# failed run may be retried safely; it is never abandoned while a transaction may exist.
_PAYMENT_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10), maximum_attempts=0)


class _Interrupted(Exception):
    """A wait ended early: cancel requested or poll_now signalled."""


@workflow.defn(name=WORKFLOW_TYPE)
class SellOrderWorkflow:
    # The input arrives as plain JSON (`SellOrderInput` is its schema) and is validated here: bad
    # JSON from a backend in another language then fails the workflow naming the field, where a
    # typed argument would fail the workflow *task* over and over. Nothing else is decoded that
    # leniently: a result that does not decode after a payment must retry, never end the order.
    @workflow.init
    def __init__(self, input: Any) -> None:
        self._input_error: str | None = None
        try:
            self._input = SellOrderInput.model_validate(input)
        except ValidationError as err:
            self._input_error = describe_validation_error(err)
            raw_id = input.get("order_id") if isinstance(input, dict) else None
            # A stand-in for the state query; run() fails before using anything else of it.
            self._input = SellOrderInput.model_construct(
                order_id=str(raw_id or "?"), max_amount=Decimal(0), ready_timeout=timedelta(0)
            )
        self._started_at = workflow.now()
        self._state = SellOrderState(order_id=self._input.order_id, stage=Stage.RECEIVED)
        self._state.timeline.append(TimelineEntry(at=self._started_at, stage=Stage.RECEIVED))
        self._decision: tuple[bool, Decision] | None = None
        self._cancel: Decision | None = None
        self._poll_now = False
        self._poll_started_at = self._started_at
        self._ready_deadline = self._started_at + self._input.ready_timeout
        self._reject_reason: RejectReason | None = None
        self._earlier_payment: PaymentOutcome | None = None
        self._last_order: KadoOrder | None = None  # the order as last checked before paying
        self._attention_from_payment = False  # the current flag was raised by the payment

    # ---- operator surface ---------------------------------------------------------------------

    @workflow.query(
        description="The order's full state: stage, order facts, tx attempts, "
        "provider statuses and a timeline."
    )
    def state(self) -> SellOrderState:
        return self._state

    @workflow.signal(description="Poll the provider now (sent by the webhook receiver).")
    def poll_now(self) -> None:
        if workflow.now() - self._poll_started_at >= POLL_NOW_MIN_GAP:
            self._poll_now = True

    @workflow.signal(description="Progress from the payment child (internal).")
    def payment_progress(self, progress: PaymentProgress) -> None:
        if progress.needs_attention and not self._state.needs_attention:
            self._attention(f"payment: {progress.attention_reason or 'needs a person'}")
            self._attention_from_payment = True
        # One upsert for the wallet, the cleared flag and (below) the stage. The conditions come
        # first: a run that never sees such a progress carries no patch marker.
        updates = [
            *self._progress_wallet(progress),
            *self._progress_clears_attention(progress),
        ]
        if progress.tx_hash and progress.tx_hash not in self._state.tx_hashes:
            self._state.tx_hashes.append(progress.tx_hash)
            self._state.tx_attempts.append(
                TxAttemptView(
                    tx_hash=progress.tx_hash,
                    nonce=progress.nonce,
                    max_fee_per_gas=progress.max_fee_per_gas,
                    max_priority_fee_per_gas=progress.max_priority_fee_per_gas,
                    status="broadcast",
                )
            )
        if self._state.stage is Stage.FUNDING and progress.tx_hash:
            self._set_stage(Stage.CONFIRMING, f"broadcast {progress.tx_hash}", *updates)
        elif updates:
            self._upsert(*updates)
            self._publish_details()

    def _progress_wallet(self, progress: PaymentProgress) -> list[Any]:
        """The wallet that actually reserved, when it is not the one the order shows."""
        plan = self._state.plan
        wallet = progress.hot_wallet
        if plan is None or not wallet or wallet == plan.hot_wallet:
            return []
        if not workflow.patched(PATCH_PROGRESS_WALLET_AND_ATTENTION):
            return []
        self._state.plan = plan.model_copy(update={"hot_wallet": wallet})
        return [sa.HOT_WALLET.value_set(wallet)]

    def _progress_clears_attention(self, progress: PaymentProgress) -> list[Any]:
        """The payment flagged the order (e.g. waiting for funds) and no longer needs a person
        (it got its nonce): clear the flag. A flag the order raised itself stays."""
        if progress.needs_attention or not self._attention_from_payment:
            return []
        if not workflow.patched(PATCH_PROGRESS_WALLET_AND_ATTENTION):
            return []
        self._attention_from_payment = False
        self._state.needs_attention = False
        self._state.attention_reason = None
        self._state.timeline.append(
            TimelineEntry(
                at=workflow.now(), stage=self._state.stage, note="attention cleared by the payment"
            )
        )
        return [sa.NEEDS_ATTENTION.value_set(False)]

    @workflow.update(
        description="Approve an order waiting for review (above the threshold). " + PAYLOAD_DOC
    )
    def approve(self, payload: Any = None) -> str:
        self._decision = (True, decision := operator_decision("approve", payload))
        return f"approved by {decision.operator}"

    @approve.validator
    def _validate_approve(self, payload: Any = None) -> None:
        operator_decision("approve", payload)
        self._require_awaiting_approval("approve")

    @workflow.update(
        description="Reject an order waiting for review; nothing is sent. " + PAYLOAD_DOC
    )
    def reject(self, payload: Any = None) -> str:
        self._decision = (False, decision := operator_decision("reject", payload))
        return f"rejected by {decision.operator}"

    @reject.validator
    def _validate_reject(self, payload: Any = None) -> None:
        operator_decision("reject", payload)
        self._require_awaiting_approval("reject")

    @workflow.update(
        description="Cancel the order. Refused once a transaction may exist (from FUNDING on). "
        + PAYLOAD_DOC
    )
    def cancel(self, payload: Any = None) -> str:
        self._cancel = decision = operator_decision("cancel", payload)
        return f"cancel accepted from {decision.operator}"

    @cancel.validator
    def _validate_cancel(self, payload: Any = None) -> None:
        operator_decision("cancel", payload)
        stage = self._state.stage
        if stage in PAYMENT_STAGES:
            raise ValueError(
                f"cannot cancel in {stage.value}: a transaction may exist; the order is followed "
                "until its fate is known"
            )
        if stage.is_terminal:
            raise ValueError(f"the order already ended ({stage.value})")

    def _require_awaiting_approval(self, what: str) -> None:
        if self._state.stage is not Stage.AWAITING_APPROVAL:
            raise ValueError(
                f"cannot {what}: the order is {self._state.stage.value}, not waiting for approval"
            )
        if self._decision is not None:
            raise ValueError(f"cannot {what}: a decision was already made")

    # ---- the lifecycle ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: Any) -> SellOrderResult:
        order_metrics.order_received(order_metrics.KADO)
        if self._input_error is not None:
            raise ApplicationError(
                f"invalid input: {self._input_error}",
                type="InvalidSellOrderInput",
                non_retryable=True,
            )
        try:
            payable = await self._until_payable()
        except (Exception, asyncio.CancelledError) as err:
            # A workflow cancel (`temporal workflow cancel`) before anything was sent: an ending
            # of its own. (Patched: runs before this change ended REJECTED provider_refused or
            # as a cancelled workflow without a result.)
            if not (_workflow_cancel(err) and workflow.patched(PATCH_WORKFLOW_CANCEL)):
                raise
            return self._cancelled_by_workflow()
        if payable is None:
            if self._earlier_payment is not None and self._last_order is not None:
                self._note("following the payment an earlier run of this order made")
                earlier, order = self._earlier_payment, self._last_order
                await self._shielded(self._conclude_and_track(earlier, order))
            return self._finish()
        plan, order = payable

        # From here on a transaction may exist: nothing, not even a cancellation of the workflow
        # itself, may end the order before the transaction's fate is known.
        await self._shielded(self._pay_and_track(plan, order))
        return self._finish()

    async def _until_payable(self) -> tuple[PaymentPlan, KadoOrder] | None:
        """Fetch, wait, check and (above the threshold) approve: the plan to pay, or None when the
        order ended before sending (or an earlier payment of ours was found: `_earlier_payment`).
        """
        order = await self._fetch_order()
        if order is None:
            return None
        self._last_order = order
        # Not ours, or not a sell order: reject now rather than wait for it to become ready.
        # (Patched: runs recorded before this change rejected it in the check activity.)
        if (
            workflow.patched(PATCH_IDENTITY_FIRST)
            and (identity := identity_rejection(order, self._input)) is not None
        ):
            self._reject(identity.reason, identity.detail)
            return None
        if await self._refused_as_funded(order):
            return None

        if not order.is_ready_for_deposit and not order.is_terminal and not order.is_expired:
            self._set_stage(Stage.AWAITING_ORDER, "waiting for deposit address and amount")
            ready = await self._await_ready(order)
            if ready is None:
                return None
            order = self._last_order = ready
            if await self._refused_as_funded(order):
                return None

        plan = await self._check(order)
        if plan is None:
            return None

        if plan.needs_review:
            if not await self._await_approval(plan):
                return None
            # The wait may have been long: the order must still be payable, and the same.
            if workflow.patched(PATCH_RECHECK_AFTER_APPROVAL):
                rechecked = await self._recheck(plan)
                if rechecked is None:
                    return None
                order, plan = rechecked
                self._last_order = order

        if self._cancel is not None:
            self._cancelled()
            return None
        return plan, order

    async def _refused_as_funded(self, order: KadoOrder) -> bool:
        """The provider says the crypto is already in transit or received: refused at once, unless
        an earlier payment of ours explains it (then `_earlier_payment` is set to follow)."""
        funded = already_funded_rejection(order)
        # The condition comes first: runs that never met such an order carry no patch marker.
        if funded is None or not workflow.patched(PATCH_ALREADY_FUNDED):
            return False
        self._earlier_payment = await self._existing_payment(
            payment_workflow_id(f"kado-{order.id}"), missing_ok=True
        )
        if self._earlier_payment is None:
            self._reject(funded.reason, funded.detail)
        return True

    async def _shielded(self, work: Awaitable[None]) -> None:
        """Run `work` to its end even if the workflow itself is cancelled."""
        task = asyncio.ensure_future(work)
        while True:
            try:
                await asyncio.shield(task)
                return
            except asyncio.CancelledError:
                if task.cancelled():
                    raise
                self._attention("cancel requested while a transaction may exist: ignored")

    async def _pay_and_track(self, plan: PaymentPlan, order: KadoOrder) -> None:
        outcome = await self._pay(plan)
        if outcome is not None:
            await self._conclude_and_track(outcome, order)

    async def _conclude_and_track(self, outcome: PaymentOutcome, order: KadoOrder) -> None:
        if self._conclude_payment(outcome):
            await self._track(order)

    async def _recheck(self, approved: PaymentPlan) -> tuple[KadoOrder, PaymentPlan] | None:
        order = await self._fetch_order()
        if order is None:
            return None
        plan = await self._check(order)
        if plan is None:
            return None
        same = (plan.chain, plan.asset, plan.amount, plan.deposit_address) == (
            approved.chain,
            approved.asset,
            approved.amount,
            approved.deposit_address,
        )
        if not same:
            self._reject(
                RejectReason.ORDER_CHANGED,
                f"the order changed after approval: now {plan.amount} {plan.asset} to "
                f"{plan.deposit_address}",
            )
            return None
        return order, plan

    async def _fetch_order(self) -> KadoOrder | None:
        for attempt in range(1, MALFORMED_FETCH_ATTEMPTS + 1):
            try:
                order: KadoOrder = await workflow.execute_activity(
                    FETCH_ORDER_ACTIVITY,
                    FetchOrderInput(order_id=self._input.order_id),
                    result_type=KadoOrder,
                    start_to_close_timeout=_PROVIDER_CALL_TIMEOUT,
                    # An unreachable provider is retried until the ready deadline.
                    schedule_to_close_timeout=_remaining(self._ready_deadline),
                    retry_policy=_PROVIDER_RETRY,
                    summary=f"fetch Kado order {self._input.order_id}",
                )
            except ActivityError as err:
                kind, _ = _failure_kind(err)
                if kind == "KadoMalformedResponse" and attempt < MALFORMED_FETCH_ATTEMPTS:
                    await workflow.sleep(timedelta(seconds=5 * attempt), summary="re-fetch")
                    continue
                self._end_before_sending(err, "the provider did not answer in time")
                return None
            self._observe(order)
            return order
        raise ApplicationError("unreachable")  # pragma: no cover

    async def _await_ready(self, order: KadoOrder) -> KadoOrder | None:
        deadline = self._ready_deadline
        while True:
            try:
                changed: KadoOrder = await self._interruptible(
                    workflow.execute_activity(
                        WAIT_FOR_ORDER_CHANGE_ACTIVITY,
                        self._wait_input(await_ready=True, last=order.transfer_status),
                        result_type=KadoOrder,
                        start_to_close_timeout=_PROVIDER_CALL_TIMEOUT,
                        schedule_to_close_timeout=_remaining(deadline),
                        retry_policy=_poll_retry(),
                        summary="wait until the order is ready for the deposit",
                    )
                )
            except _Interrupted:
                if self._cancel is not None:
                    self._cancelled()
                    return None
                continue
            except ActivityError as err:
                self._end_before_sending(err, "the order never became ready for the deposit")
                return None
            self._observe(changed)
            if changed.is_expired:
                self._set_stage(Stage.EXPIRED, "the provider expired the order before it was ready")
                return None
            if changed.is_ready_for_deposit or changed.is_terminal:
                return changed
            # In transit before we paid: the caller refuses it (waiting would end EXPIRED).
            if already_funded_rejection(changed) is not None and workflow.patched(
                PATCH_ALREADY_FUNDED
            ):
                return changed
            order = changed

    async def _check(self, order: KadoOrder) -> PaymentPlan | None:
        result: CheckResult = await workflow.execute_activity(
            CHECK_SELL_ORDER_ACTIVITY,
            CheckSellOrderInput(order=order, request=self._input),
            result_type=CheckResult,
            start_to_close_timeout=_CHECK_TIMEOUT,
            retry_policy=_CHECK_RETRY,
            summary="check the order against the request and configuration",
        )
        if result.rejection is not None:
            # Past "ready" at the provider: maybe because we paid already (this workflow was
            # reset after its payment). Follow that payment rather than report a rejection.
            if result.rejection.reason in _MAY_HAVE_BEEN_PAID and workflow.patched(
                PATCH_FIND_EARLIER_PAYMENT
            ):
                self._earlier_payment = await self._existing_payment(
                    payment_workflow_id(f"kado-{order.id}"), missing_ok=True
                )
                if self._earlier_payment is not None:
                    return None
            self._reject(result.rejection.reason, result.rejection.detail)
            return None
        if result.plan is None:
            raise ApplicationError("check returned neither a plan nor a rejection")
        if self._cancel is not None:
            self._cancelled()
            return None
        self._state.plan = result.plan
        self._upsert(
            sa.CHAIN.value_set(result.plan.chain),
            sa.ASSET.value_set(result.plan.asset),
            sa.AMOUNT.value_set(str(result.plan.amount)),
            # A pool's wallet is set when the payment reports it (payment_progress).
            *([sa.HOT_WALLET.value_set(result.plan.hot_wallet)] if result.plan.hot_wallet else []),
        )
        self._set_stage(
            Stage.VALIDATED,
            f"pay {result.plan.amount} {result.plan.asset} to {result.plan.deposit_address}",
        )
        return result.plan

    async def _await_approval(self, plan: PaymentPlan) -> bool:
        self._set_stage(
            Stage.AWAITING_APPROVAL,
            f"{plan.amount} {plan.asset} is at or above the review threshold",
        )
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._cancel is not None,
                timeout=self._input.approval_timeout,
                timeout_summary="approval deadline",
            )
        except TimeoutError:
            self._reject(RejectReason.APPROVAL_TIMED_OUT, "no operator decision in time")
            return False
        if self._cancel is not None:
            self._cancelled()
            return False
        assert self._decision is not None
        approved, decision = self._decision
        if not approved:
            self._reject(
                RejectReason.NOT_APPROVED,
                f"rejected by {decision.operator}: {decision.note}".rstrip(": "),
            )
            return False
        self._state.approved_by = decision.operator
        self._note(f"approved by {decision.operator}")
        return True

    async def _pay(self, plan: PaymentPlan) -> PaymentOutcome | None:
        # FUNDING is set before the child is started, so a cancel arriving from here on is refused.
        self._set_stage(Stage.FUNDING, "reserving a nonce and sending")
        payment_id = payment_workflow_id(f"kado-{plan.order_id}")
        try:
            outcome = await self._start_payment(plan, payment_id)
        except WorkflowAlreadyStartedError:
            # A payment for this order exists already (e.g. this workflow was reset): follow it,
            # never start another.
            self._note(f"following the existing payment {payment_id}")
            outcome = await self._existing_payment(payment_id)
        return outcome

    def _conclude_payment(self, outcome: PaymentOutcome) -> bool:
        """Record the payment's outcome; True when it confirmed (the order is then followed)."""
        self._record_payment(outcome)
        if outcome.status is PaymentStatus.CONFIRMED:
            self._set_stage(Stage.TRACKING, f"confirmed in block {outcome.block_number}")
            return True
        if outcome.status is PaymentStatus.REJECTED:
            self._reject(_payment_rejection(outcome.rejection_code), outcome.reason or "")
        elif outcome.status is PaymentStatus.CANCELLED:
            self._set_stage(Stage.CANCELLED, outcome.reason or "payment cancelled before signing")
        elif outcome.status is PaymentStatus.REVERTED:
            self._attention(f"transaction {outcome.tx_hash} reverted")
            self._set_stage(Stage.TX_REVERTED, outcome.reason or "the transfer reverted")
        else:
            self._attention(f"payment ended {outcome.status.value}: {outcome.reason}")
            self._set_stage(Stage.UNRESOLVED, outcome.reason or outcome.status.value)
        return False

    async def _start_payment(self, plan: PaymentPlan, payment_id: str) -> PaymentOutcome | None:
        try:
            outcome: PaymentOutcome = await workflow.execute_child_workflow(
                PAYMENT_WORKFLOW,
                PaymentRequest(
                    payment_id=f"kado-{plan.order_id}",
                    chain=plan.chain,
                    asset=plan.asset,
                    recipient=plan.deposit_address,
                    amount=plan.amount,
                    expected_token_address=plan.token_address,
                    progress_signal="payment_progress",
                ),
                id=payment_id,
                result_type=PaymentOutcome,
                parent_close_policy=ParentClosePolicy.ABANDON,
                # Never a second payment workflow for an order, even after this one closed.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                retry_policy=_PAYMENT_RETRY,
                static_summary=f"pay {plan.amount} {plan.asset} for Kado order {plan.order_id}",
            )
        except ChildWorkflowError as err:
            await self._hold_for_a_person(payment_id, str(err.cause or err))
            return None
        return outcome

    async def _existing_payment(
        self, payment_id: str, *, missing_ok: bool = False
    ) -> PaymentOutcome | None:
        """The outcome of a payment workflow this run did not start (waits until it closes);
        None if `missing_ok` and there is none. A workflow cancel does not stop the look: a
        transaction may exist, and only the answer tells."""
        while True:
            try:
                outcome: PaymentOutcome | None = await workflow.execute_activity(
                    PAYMENT_OUTCOME_ACTIVITY,
                    PaymentOutcomeQuery(workflow_id=payment_id, missing_ok=missing_ok),
                    result_type=PaymentOutcome | None,  # type: ignore[arg-type]
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(
                        maximum_interval=timedelta(minutes=1),
                        maximum_attempts=0,
                        non_retryable_error_types=[PAYMENT_CLOSED_WITHOUT_OUTCOME],
                    ),
                    summary=f"wait for the outcome of {payment_id}",
                )
            except ActivityError as err:
                if _workflow_cancel(err) and workflow.patched(PATCH_WORKFLOW_CANCEL):
                    self._note(
                        "workflow cancel requested while looking for an earlier payment: "
                        "the look is finished first"
                    )
                    continue
                await self._hold_for_a_person(payment_id, _failure_kind(err)[1])
                return None
            return outcome

    async def _hold_for_a_person(self, payment_id: str, why: str) -> None:
        """The payment workflow ended without an outcome (terminated or failed): a transaction
        may exist and only a person can tell. Flag it and never end the order on our own."""
        self._attention(
            f"payment {payment_id} ended without an outcome ({why}); find its transaction "
            "(hot wallet nonce, tx hashes in the state query) and settle the order by hand"
        )
        await workflow.wait_condition(lambda: False)

    async def _track(self, order: KadoOrder) -> None:
        deadline = workflow.now() + self._input.settlement_timeout
        last = order.transfer_status
        unknown_since: datetime | None = None
        # A malformed answer is retried inside the wait (no history per retry) until the deadline.
        retry_malformed = workflow.patched(PATCH_RETRY_MALFORMED_AFTER_PAYMENT)
        while True:
            alert_at = (
                unknown_since + self._input.unknown_alert_after
                if unknown_since is not None and not self._state.needs_attention
                else None
            )
            try:
                changed: KadoOrder = await self._interruptible(
                    workflow.execute_activity(
                        WAIT_FOR_ORDER_CHANGE_ACTIVITY,
                        self._wait_input(
                            await_ready=False, last=last, retry_malformed=retry_malformed
                        ),
                        result_type=KadoOrder,
                        start_to_close_timeout=_PROVIDER_CALL_TIMEOUT,
                        schedule_to_close_timeout=_remaining(deadline),
                        retry_policy=_poll_retry(retry_malformed=retry_malformed),
                        summary=f"follow the order until settled (now {_show(last)})",
                    ),
                    alert_at=alert_at,
                    on_alert=lambda: self._attention(
                        f"provider status unknown for over {self._input.unknown_alert_after}"
                    ),
                    cancellable=False,
                )
            except _Interrupted:
                continue
            except ActivityError as err:
                if _gave_up_waiting(err):
                    self._unsettled_at_deadline(err)
                    return
                # The order vanished or the provider refuses us after we paid: keep the
                # evidence, flag it, and end unresolved (our transaction is confirmed on chain;
                # whether the provider credited it is not known).
                _, message = _failure_kind(err)
                self._attention(f"provider error after payment: {message}")
                self._set_stage(Stage.UNRESOLVED, message)
                return
            self._observe(changed)
            if changed.is_settled:
                self._set_stage(Stage.SETTLED, changed.human_status or "settled")
                return
            if changed.is_failed:
                self._attention("the provider failed the order after our payment")
                self._set_stage(Stage.PROVIDER_FAILED, changed.human_status or "failed")
                return
            if changed.transfer_status is TransferStatus.UNKNOWN:
                unknown_since = unknown_since or workflow.now()
            else:
                unknown_since = None
            last = changed.transfer_status

    def _unsettled_at_deadline(self, err: ActivityError) -> None:
        """The settlement deadline passed: flag it, saying what we last heard (never that the
        provider confirmed anything it did not)."""
        last_failure = _last_attempt_failure(err)
        if last_failure is not None and last_failure.type == "KadoMalformedResponse":
            why = (
                "the provider's answers were malformed until the settlement deadline "
                f"(last: {last_failure.message}); the order's settlement is unknown"
            )
            self._attention(why)
        else:
            why = "the provider did not settle in time"
            self._attention("no settlement by the deadline")
        self._set_stage(Stage.UNRESOLVED, why)

    def _wait_input(
        self, *, await_ready: bool, last: TransferStatus | None, retry_malformed: bool = False
    ) -> WaitForOrderChangeInput:
        return WaitForOrderChangeInput(
            order_id=self._input.order_id,
            await_ready=await_ready,
            last_transfer_status=last,
            retry_malformed=retry_malformed,
            initial_interval_seconds=self._input.poll_initial_interval.total_seconds(),
            max_interval_seconds=max(
                self._input.poll_max_interval, self._input.poll_initial_interval
            ).total_seconds(),
        )

    async def _interruptible(
        self,
        waiting: Awaitable[T],
        *,
        alert_at: datetime | None = None,
        on_alert: Callable[[], None] | None = None,
        cancellable: bool = True,
    ) -> T:
        """Await an activity until it completes, `poll_now` arrives, or (if `cancellable`) a cancel
        is requested. `alert_at`: call `on_alert` once if still waiting then (one timer)."""
        self._poll_now = False
        self._poll_started_at = workflow.now()
        task: asyncio.Future[T] = asyncio.ensure_future(waiting)

        def interrupted() -> bool:
            return self._poll_now or (cancellable and self._cancel is not None)

        condition = lambda: task.done() or interrupted()  # noqa: E731
        if alert_at is not None and on_alert is not None:
            try:
                await workflow.wait_condition(
                    condition, timeout=_remaining(alert_at), timeout_summary="attention alarm"
                )
            except TimeoutError:
                on_alert()
        await workflow.wait_condition(condition)
        if task.done():
            return task.result()
        task.cancel()
        # The cancelled wait ends with a cancellation (or, in a race, its own result or error):
        # none of it matters any more, the caller polls afresh or stops.
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await task
        raise _Interrupted

    # ---- state bookkeeping --------------------------------------------------------------------

    def _observe(self, order: KadoOrder) -> None:
        status = _show(order.transfer_status)
        facts = OrderFacts(
            blockchain=order.blockchain,
            asset=order.asset_symbol or order.asset,
            amount=order.amount,
            deposit_address=order.deposit_address,
            user_ref=order.user_ref,
            transfer_status=status,
            machine_status=order.machine_status,
            human_status=order.human_status,
        )
        self._state.order = facts
        statuses = self._state.provider_statuses
        if not statuses or statuses[-1] != status:
            statuses.append(status)
            self._upsert(sa.TRANSFER_STATUS.value_set(status))

    def _record_payment(self, outcome: PaymentOutcome) -> None:
        for tx_hash in outcome.tx_hashes:
            if tx_hash not in self._state.tx_hashes:
                self._state.tx_hashes.append(tx_hash)
                self._state.tx_attempts.append(TxAttemptView(tx_hash=tx_hash, nonce=outcome.nonce))
        for attempt in self._state.tx_attempts:
            attempt.nonce = attempt.nonce if attempt.nonce is not None else outcome.nonce
            attempt.status = "mined" if attempt.tx_hash == outcome.tx_hash else "replaced"
        self._state.confirmed_tx_hash = outcome.tx_hash
        self._state.block_number = outcome.block_number
        if outcome.tx_hash:
            self._upsert(sa.TX_HASH.value_set(outcome.tx_hash))

    def _end_before_sending(self, err: ActivityError, on_timeout: str) -> None:
        """A provider call failed for good before anything was sent: EXPIRED on the deadline,
        otherwise REJECTED with the reason the failure names. A workflow cancel is re-raised (it
        is an ending of its own, see `run`)."""
        if _workflow_cancel(err) and workflow.patched(PATCH_WORKFLOW_CANCEL):
            raise err
        if _gave_up_waiting(err):
            self._set_stage(Stage.EXPIRED, on_timeout)
            return
        kind, message = _failure_kind(err)
        if kind == "KadoOrderNotFound":
            reason = RejectReason.ORDER_NOT_FOUND
        elif kind == "KadoMalformedResponse":
            reason = _malformed_reason(err)
        else:  # the provider refused the request (4xx) or the id
            reason = RejectReason.PROVIDER_REFUSED
        self._reject(reason, message)

    def _reject(self, reason: RejectReason, detail: str) -> None:
        self._reject_reason = reason
        self._set_stage(Stage.REJECTED, str(Rejection(reason=reason, detail=detail)))

    def _cancelled(self) -> SellOrderResult:
        assert self._cancel is not None
        note = f"cancelled by {self._cancel.operator}"
        if self._cancel.note:
            note += f": {self._cancel.note}"
        self._set_stage(Stage.CANCELLED, note)
        return self._finish()

    def _cancelled_by_workflow(self) -> SellOrderResult:
        reason = workflow.cancellation_reason()
        note = "cancelled by a workflow cancellation request before anything was sent"
        if reason:
            note += f": {reason}"
        self._set_stage(Stage.CANCELLED, note)
        return self._finish()

    def _attention(self, reason: str) -> None:
        self._attention_from_payment = False  # the caller sets it when the payment asked
        self._state.needs_attention = True
        self._state.attention_reason = reason
        self._upsert(sa.NEEDS_ATTENTION.value_set(True))
        order_metrics.order_attention(order_metrics.KADO)
        self._note(f"needs attention: {reason}")

    def _note(self, note: str) -> None:
        self._state.timeline.append(
            TimelineEntry(at=workflow.now(), stage=self._state.stage, note=note)
        )
        self._publish_details()

    def _set_stage(self, stage: Stage, note: str = "", *also: Any) -> None:
        """`also`: search-attribute updates of the same moment, in the same upsert."""
        self._state.stage = stage
        if stage.is_terminal:
            self._state.reason = note
        self._state.timeline.append(TimelineEntry(at=workflow.now(), stage=stage, note=note))
        self._upsert(sa.STAGE.value_set(stage.value), *also)
        order_metrics.order_stage(
            order_metrics.KADO, stage.value, terminal=stage.is_terminal, started_at=self._started_at
        )
        self._publish_details()

    def _upsert(self, *updates: Any) -> None:
        workflow.upsert_search_attributes(list(updates))

    def _publish_details(self) -> None:
        s = self._state
        lines = [
            f"**{s.stage.value}**" + (" · ⚠ needs attention" if s.needs_attention else ""),
            "",
            f"- order `{s.order_id}` · provider status `{s.order.transfer_status or '-'}`",
        ]
        if s.plan is not None:
            lines.append(
                f"- pay **{s.plan.amount} {s.plan.asset}** on {s.plan.chain} to "
                f"`{s.plan.deposit_address}`"
                + (f" from `{s.plan.hot_wallet}`" if s.plan.hot_wallet else "")
            )
        if s.tx_hashes:
            lines.append("- tx: " + ", ".join(f"`{h}`" for h in s.tx_hashes))
        if s.attention_reason:
            lines.append(f"- attention: {s.attention_reason}")
        if s.timeline and s.timeline[-1].note:
            lines.append(f"- last: {s.timeline[-1].note}")
        workflow.set_current_details("\n".join(lines))

    def _finish(self) -> SellOrderResult:
        s = self._state
        plan = s.plan
        return SellOrderResult(
            order_id=s.order_id,
            outcome=s.stage,
            reason=s.reason,
            reject_reason=self._reject_reason,
            needs_attention=s.needs_attention,
            chain=plan.chain if plan else s.order.blockchain,
            asset=plan.asset if plan else s.order.asset,
            amount=plan.amount if plan else s.order.amount,
            amount_base_units=plan.amount_base_units if plan else None,
            deposit_address=plan.deposit_address if plan else s.order.deposit_address,
            tx_hashes=list(s.tx_hashes),
            confirmed_tx_hash=s.confirmed_tx_hash,
            block_number=s.block_number,
            started_at=self._started_at,
            finished_at=workflow.now(),
        )


# ---- helpers (pure) ---------------------------------------------------------------------------


# Rejections that mean the provider moved past "ready for the deposit": possibly our own payment.
_MAY_HAVE_BEEN_PAID = frozenset(
    {RejectReason.ORDER_NOT_READY, RejectReason.ORDER_FAILED, RejectReason.ORDER_EXPIRED}
)


def _poll_retry(*, retry_malformed: bool = False) -> RetryPolicy:
    # The wait is the retry loop: unlimited attempts, delays chosen by the activity.
    non_retryable = ["KadoOrderNotFound", "KadoRequestRejected"]
    if not retry_malformed:
        non_retryable.append("KadoMalformedResponse")
    return RetryPolicy(
        initial_interval=timedelta(seconds=5),
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=0,
        non_retryable_error_types=non_retryable,
    )


def _remaining(deadline: datetime) -> timedelta:
    return max(deadline - workflow.now(), timedelta(seconds=1))


def _show(status: TransferStatus | None) -> str:
    return status.value if status is not None else "missing"


def _failure_kind(err: ActivityError) -> tuple[str, str]:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.type or "", cause.message
    return type(cause).__name__ if cause else "", str(cause or err)


def _workflow_cancel(err: BaseException) -> bool:
    """The workflow itself was asked to cancel and `err` is that cancellation arriving (as the
    awaited activity's cancellation, or as asyncio's)."""
    return workflow.cancellation_reason() is not None and is_cancelled_exception(err)


def _last_attempt_failure(err: ActivityError) -> ApplicationError | None:
    """The failure of the last attempt of a wait that ran out of time: the cause itself, or the
    cause of the timeout (the server attaches the last attempt's failure to it)."""
    cause = err.cause
    if isinstance(cause, ActivityTimeoutError):
        cause = cause.cause
    return cause if isinstance(cause, ApplicationError) else None


def _gave_up_waiting(err: ActivityError) -> bool:
    """The wait's deadline passed. The server reports either a timeout or, when the next retry
    would fall after the deadline, the last attempt's (retryable) failure."""
    cause = err.cause
    if isinstance(cause, ActivityTimeoutError):
        return True
    return isinstance(cause, ApplicationError) and not cause.non_retryable


def _malformed_reason(err: ActivityError) -> RejectReason:
    cause = err.cause
    field = ""
    if isinstance(cause, ApplicationError) and cause.details:
        details = cause.details[0]
        if isinstance(details, dict):
            field = str(details.get("field", ""))
    if field.startswith("depositAddress"):
        return RejectReason.DEPOSIT_ADDRESS_INVALID
    if field.startswith("payAmount"):
        return RejectReason.AMOUNT_INVALID
    if field.startswith("cryptoCurrency"):
        return RejectReason.TOKEN_ADDRESS_MISMATCH
    return RejectReason.ORDER_MALFORMED


def _payment_rejection(code: RejectionCode | None) -> RejectReason:
    return (
        {
            RejectionCode.INSUFFICIENT_BALANCE: RejectReason.INSUFFICIENT_BALANCE,
            RejectionCode.WOULD_REVERT: RejectReason.TRANSFER_WOULD_FAIL,
            RejectionCode.INVALID_RECIPIENT: RejectReason.DEPOSIT_ADDRESS_INVALID,
            RejectionCode.ASSET_NOT_ALLOWED: RejectReason.ASSET_NOT_ALLOWED,
            RejectionCode.TOKEN_MISMATCH: RejectReason.TOKEN_ADDRESS_MISMATCH,
            RejectionCode.CHAIN_NOT_CONFIGURED: RejectReason.UNSUPPORTED_CHAIN,
            RejectionCode.CHAIN_NOT_SERVED: RejectReason.CHAIN_ID_MISMATCH,
            RejectionCode.AMOUNT_OVER_CAP: RejectReason.OVER_ORDER_CAP,
        }.get(code, RejectReason.PAYMENT_REJECTED)
        if code
        else RejectReason.PAYMENT_REJECTED
    )
