"""SellOrderWorkflow: one provider's SELL order from its id to settled, paying exactly once.

RECEIVED → AWAITING_ORDER → VALIDATED → [AWAITING_APPROVAL] → FUNDING → CONFIRMING → TRACKING →
SETTLED, or REJECTED / CANCELLED / EXPIRED before anything is sent, or PROVIDER_FAILED /
TX_REVERTED / UNRESOLVED after. Two invariants (design.md): nothing is sent unless every check
passed; once a transaction could be on chain, the workflow never ends without knowing its fate
(cancel is refused from FUNDING on; the payment child is awaited whatever happens).

One workflow for every provider: the provider's adapter (named in the input, else the default)
gives the activity names, result types and error types, and maps the provider's order to the
normalised snapshot the workflow reads. The parts: `handlers` (operator surface), `waits`
(provider calls), `paying` (the payment child), `state` (bookkeeping), `failures`
(classification), `render` (live details), `patches` (patch ids).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from offramp import search_attributes as sa
    from offramp.chain.models import PaymentOutcome, payment_workflow_id
    from offramp.observability import order_metrics
    from offramp.orders import names
    from offramp.orders.checks import already_funded_rejection, identity_rejection
    from offramp.orders.models import (
        CheckResult,
        CheckSellOrderInput,
        OrderCarry,
        PaymentPlan,
        RejectReason,
        SellOrderInput,
        SellOrderResult,
        SellOrderState,
        Stage,
        TimelineEntry,
    )
    from offramp.providers import adapter
    from offramp.validation import describe as describe_validation_error

from workflows.order.continuation import ContinueOrder, split_carry
from workflows.order.failures import workflow_cancel
from workflows.order.handlers import OrderHandlers
from workflows.order.patches import (
    PATCH_ALREADY_FUNDED,
    PATCH_FIND_EARLIER_PAYMENT,
    PATCH_IDENTITY_FIRST,
    PATCH_RECHECK_AFTER_APPROVAL,
    PATCH_WORKFLOW_CANCEL,
)
from workflows.order.paying import OrderPayment
from workflows.order.state import Seen
from workflows.order.waits import ProviderWaits

_CHECK_TIMEOUT: Final = timedelta(seconds=10)
_CHECK_RETRY: Final = RetryPolicy(maximum_interval=timedelta(seconds=30))
# Rejections that mean the provider moved past "ready for the deposit": possibly our own payment.
_MAY_HAVE_BEEN_PAID: Final = frozenset(
    {RejectReason.ORDER_NOT_READY, RejectReason.ORDER_FAILED, RejectReason.ORDER_EXPIRED}
)


@workflow.defn(name=names.WORKFLOW_TYPE)
class SellOrderWorkflow(OrderHandlers, ProviderWaits, OrderPayment):
    # The input arrives as plain JSON (`SellOrderInput` is its schema) and is validated here: bad
    # JSON from a backend in another language then fails the workflow naming the field, where a
    # typed argument would fail the workflow *task* over and over. Nothing else is decoded that
    # leniently: a result that does not decode after a payment must retry, never end the order.
    @workflow.init
    def __init__(self, input: Any) -> None:
        self._input_error = None
        carry = None
        try:
            input, carry = split_carry(input)  # a continued run's carry sits beside the input
            self._input = SellOrderInput.model_validate(input)
        except ValidationError as err:
            self._input_error = describe_validation_error(err)
            raw_id = input.get("order_id") if isinstance(input, dict) else None
            # A stand-in for the state query; run() fails before using anything else of it.
            self._input = SellOrderInput.model_construct(
                order_id=str(raw_id or "?"), max_amount=Decimal(0), ready_timeout=timedelta(0)
            )
        self._adapter = adapter(self._input.provider)
        self._started_at = workflow.now()
        self._state = SellOrderState(order_id=self._input.order_id, stage=Stage.RECEIVED)
        self._state.timeline.append(TimelineEntry(at=self._started_at, stage=Stage.RECEIVED))
        self._decision = None
        self._cancel = None
        self._poll_now = False
        self._poll_deferred = False
        self._poll_started_at = self._started_at
        self._ready_deadline = self._started_at + self._input.ready_timeout
        self._reject_reason = None
        self._earlier_payment = None
        self._last_order = None
        self._attention_from_payment = False
        self._pending_upserts = {}
        self._flush_scheduled = False
        self._carry = carry
        self._runs = 1
        if carry is not None:
            self._resume(carry)

    def _resume(self, carry: OrderCarry) -> None:
        """A continued run: the order as the last run left it."""
        self._state = carry.state
        self._started_at = carry.started_at
        self._ready_deadline = carry.ready_deadline
        self._attention_from_payment = carry.attention_from_payment
        self._runs = carry.runs + 1

    @workflow.run
    async def run(self, input: Any) -> SellOrderResult:
        try:
            return await self._run()
        except ContinueOrder as long:
            await self._continue_as_new(long.tracking)
            raise  # not reached: continue_as_new raises
        finally:
            self._flush_upserts()  # before the workflow's ending, the last command

    async def _run(self) -> SellOrderResult:
        if self._carry is None:
            order_metrics.order_received(self._adapter.name)
        if self._input_error is not None:
            raise ApplicationError(
                f"invalid input: {self._input_error}",
                type="InvalidSellOrderInput",
                non_retryable=True,
            )
        if self._carry is not None and self._carry.tracking is not None:
            # Paid already: back to following it, exactly where the last run stood.
            tracking = self._carry.tracking
            await self._shielded(
                self._track(tracking.last_status, tracking.deadline, tracking.unknown_since)
            )
            return self._finish()
        try:
            payable = await self._until_payable()
        except (Exception, asyncio.CancelledError) as err:
            # A workflow cancel (`temporal workflow cancel`) before anything was sent: an ending
            # of its own. (Patched: runs before this change ended REJECTED provider_refused or
            # as a cancelled workflow without a result.)
            if not (workflow_cancel(err) and workflow.patched(PATCH_WORKFLOW_CANCEL)):
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

    async def _until_payable(self) -> tuple[PaymentPlan, Seen] | None:
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
            and (identity := identity_rejection(order.view, self._input)) is not None
        ):
            self._reject(identity.reason, identity.detail)
            return None
        if await self._refused_as_funded(order):
            return None

        view = order.view
        if not view.ready and not view.terminal and not view.expired:
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

    async def _refused_as_funded(self, order: Seen) -> bool:
        """The provider says the crypto is already in transit or received: refused at once, unless
        an earlier payment of ours explains it (then `_earlier_payment` is set to follow)."""
        funded = already_funded_rejection(order.view)
        # The condition comes first: runs that never met such an order carry no patch marker.
        if funded is None or not workflow.patched(PATCH_ALREADY_FUNDED):
            return False
        self._earlier_payment = await self._existing_payment(
            payment_workflow_id(self._payment_id(order.view.order_id)), missing_ok=True
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

    async def _pay_and_track(self, plan: PaymentPlan, order: Seen) -> None:
        outcome = await self._pay(plan)
        if outcome is not None:
            await self._conclude_and_track(outcome, order)

    async def _conclude_and_track(self, outcome: PaymentOutcome, order: Seen) -> None:
        if self._conclude_payment(outcome):
            await self._track(order.view.status, workflow.now() + self._input.settlement_timeout)

    async def _recheck(self, approved: PaymentPlan) -> tuple[Seen, PaymentPlan] | None:
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

    async def _check(self, order: Seen) -> PaymentPlan | None:
        result: CheckResult = await workflow.execute_activity(
            names.CHECK_SELL_ORDER_ACTIVITY,
            CheckSellOrderInput(order=order.raw, request=self._input, provider=self._adapter.name),
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
                    payment_workflow_id(self._payment_id(order.view.order_id)), missing_ok=True
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
            # Off for an order started by an encrypting client (the input says so: replay-safe).
            *(
                [sa.AMOUNT.value_set(str(result.plan.amount))]
                if self._input.amount_searchable
                else []
            ),
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
