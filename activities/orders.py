"""Sell-order activities: the pre-send checks that need the worker's configuration, and following
a payment workflow this run did not start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError, RPCStatusCode

from offramp.chain.models import PaymentOutcome
from offramp.config import ChainConfig
from offramp.orders.checks import check_order
from offramp.orders.models import (
    CHECK_SELL_ORDER_ACTIVITY,
    PAYMENT_CLOSED_WITHOUT_OUTCOME,
    PAYMENT_OUTCOME_ACTIVITY,
    CheckResult,
    CheckSellOrderInput,
    PaymentOutcomeQuery,
)
from offramp.providers import adapter

PAYMENT_POLL_INTERVAL = timedelta(seconds=10)


class OrderActivities:
    """Bound to the chains this worker serves (each one's eth_chainId verified at start)."""

    def __init__(self, chains: Mapping[str, ChainConfig]) -> None:
        self._chains = dict(chains)
        # Every hot wallet we control, on any chain: never a deposit address.
        self._own_wallets = frozenset(
            w.lower() for c in self._chains.values() for w in c.hot_wallets
        )

    def all(self) -> list[Callable[..., Any]]:
        return [self.check_sell_order, self.payment_outcome]

    @activity.defn(name=CHECK_SELL_ORDER_ACTIVITY)
    async def check_sell_order(self, input: CheckSellOrderInput) -> CheckResult:
        # The provider's order, normalised by its adapter: the checks know no provider.
        snapshot = adapter(input.provider).snapshot(input.order)
        result = check_order(snapshot, input.request, self._chains, self._own_wallets)
        if result.rejection is not None:
            activity.logger.info("order %s rejected: %s", snapshot.order_id, result.rejection)
        return result

    @activity.defn(name=PAYMENT_OUTCOME_ACTIVITY)
    async def payment_outcome(self, query: PaymentOutcomeQuery) -> PaymentOutcome | None:
        """The outcome of an existing payment workflow: one look per attempt; "still running" is
        a BENIGN retry (the retry policy is the wait, with no history per look). None when there
        is no such workflow and `missing_ok`."""
        payment_workflow_id = query.workflow_id
        handle = activity.client().get_workflow_handle(
            payment_workflow_id, result_type=PaymentOutcome
        )
        try:
            status = (await handle.describe()).status
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND and query.missing_ok:
                return None
            raise
        if status is WorkflowExecutionStatus.COMPLETED:
            outcome: PaymentOutcome = await handle.result()
            return outcome
        if status is WorkflowExecutionStatus.RUNNING:
            raise ApplicationError(
                f"payment {payment_workflow_id} still running",
                type="PaymentRunning",
                next_retry_delay=PAYMENT_POLL_INTERVAL,
                category=ApplicationErrorCategory.BENIGN,
            )
        raise ApplicationError(
            f"payment {payment_workflow_id} closed as {status.name if status else 'unknown'}",
            type=PAYMENT_CLOSED_WITHOUT_OUTCOME,
            non_retryable=True,
        )
