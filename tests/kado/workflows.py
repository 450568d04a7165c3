"""Minimal workflows that call the Kado activities the way the SellOrder workflow will."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from offramp.providers.kado.errors import NON_RETRYABLE_ERROR_TYPES
    from offramp.providers.kado.models import (
        FETCH_ORDER_ACTIVITY,
        WAIT_FOR_ORDER_CHANGE_ACTIVITY,
        FetchOrderInput,
        KadoOrder,
        WaitForOrderChangeInput,
    )


@workflow.defn
class FetchOrderWorkflow:
    @workflow.run
    async def run(self, order_id: str) -> KadoOrder:
        order: KadoOrder = await workflow.execute_activity(
            FETCH_ORDER_ACTIVITY,
            FetchOrderInput(order_id=order_id),
            result_type=KadoOrder,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                backoff_coefficient=1.5,
                maximum_interval=timedelta(seconds=1),
                maximum_attempts=30,
                non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
            ),
        )
        return order


@workflow.defn
class WaitForChangeWorkflow:
    @workflow.run
    async def run(self, request: WaitForOrderChangeInput) -> KadoOrder:
        order: KadoOrder = await workflow.execute_activity(
            WAIT_FOR_ORDER_CHANGE_ACTIVITY,
            request,
            result_type=KadoOrder,
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(
                maximum_attempts=0,  # the retry policy is the poll loop
                non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
            ),
        )
        return order


@workflow.defn
class WaitThenWakeWorkflow:
    """Waits for a change, but a `poll_now` signal cancels the pending wait and fetches at once
    (the pattern the SellOrder workflow uses to wake early)."""

    def __init__(self) -> None:
        self._poll_now = False

    @workflow.signal
    def poll_now(self) -> None:
        self._poll_now = True

    @workflow.run
    async def run(self, request: WaitForOrderChangeInput) -> str:
        wait = workflow.start_activity(
            WAIT_FOR_ORDER_CHANGE_ACTIVITY,
            request,
            result_type=KadoOrder,
            start_to_close_timeout=timedelta(seconds=10),
            schedule_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(
                maximum_attempts=0, non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES)
            ),
        )
        await workflow.wait_condition(lambda: self._poll_now or wait.done())
        if wait.done():
            return "changed"
        wait.cancel()
        try:
            await wait
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                raise
        order: KadoOrder = await workflow.execute_activity(
            FETCH_ORDER_ACTIVITY,
            FetchOrderInput(order_id=request.order_id),
            result_type=KadoOrder,
            start_to_close_timeout=timedelta(seconds=10),
        )
        return f"woken: {order.transfer_status}"
