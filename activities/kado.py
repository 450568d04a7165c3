"""Kado activities: fetch an order; wait until it changes.

Waiting uses Temporal's *infrequent polling* pattern: each attempt of `kado_wait_for_order_change`
polls once, returns the order if it changed, and otherwise raises a BENIGN `ApplicationError`
("KadoOrderNotChanged") with `next_retry_delay` set to the next adaptive interval. The retry policy
is the loop. Attempts are not recorded in the workflow history (only the final
scheduled/started/completed events are), so a wait of any length costs the same few events; no
worker slot is held between polls; the server's durable timer survives worker restarts; BENIGN
errors are logged at DEBUG without a traceback. A long heartbeating activity would hold a slot per
order and lose its sleep on a worker crash, for no benefit at poll intervals of seconds or more.

How the workflow calls it (no history growth per poll, deadline from the workflow):

    workflow.execute_activity(
        WAIT_FOR_ORDER_CHANGE_ACTIVITY,
        WaitForOrderChangeInput(order_id=..., last_transfer_status=..., await_ready=...),
        result_type=KadoOrder,
        start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=<how long to keep waiting>,
        retry_policy=RetryPolicy(maximum_attempts=0,  # unlimited: the wait is the retry loop
                                 non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES),
    )

`next_retry_delay` is not capped by the policy's `maximum_interval` (Temporal server ≥ 1.25,
temporalio/temporal#6063). When `schedule_to_close_timeout` passes, or the next delay would end
after it (the server then fails at once rather than wait), the activity fails with a timeout
(cause `TimeoutError`, type SCHEDULE_TO_CLOSE): the workflow's "no progress by the deadline".
To wake early (a `poll_now` signal), the workflow cancels the pending wait (it is between
attempts, so the cancel is immediate) and fetches or starts a new wait (see
tests/kado/workflows.py `WaitThenWakeWorkflow`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from offramp.kado.client import KadoClient
from offramp.kado.errors import (
    KadoError,
    KadoMalformedResponse,
    KadoOrderNotFound,
    KadoRateLimited,
    KadoRequestRejected,
    KadoRetryableError,
)
from offramp.kado.models import (
    FETCH_ORDER_ACTIVITY,
    WAIT_FOR_ORDER_CHANGE_ACTIVITY,
    FetchOrderInput,
    KadoOrder,
    WaitForOrderChangeInput,
)
from offramp.observability import order_metrics

log = logging.getLogger(__name__)

NOT_CHANGED_ERROR_TYPE: Final = "KadoOrderNotChanged"


def _details(exc: KadoError) -> dict[str, Any]:
    details: dict[str, Any] = {"order_id": exc.order_id}
    if isinstance(exc, KadoMalformedResponse):
        details.update(field=exc.field, reason=exc.reason)
    if isinstance(exc, (KadoOrderNotFound, KadoRequestRejected)):
        details.update(status_code=exc.status_code, provider_message=exc.provider_message)
    if isinstance(exc, KadoRetryableError) and exc.retry_after is not None:
        details.update(retry_after_seconds=exc.retry_after)
    return details


def to_application_error(
    exc: KadoError, min_delay_seconds: float | None = None
) -> ApplicationError:
    """A client error as the ApplicationError Temporal understands: stable `type`, non-retryable
    unless the failure is transient, and the provider's Retry-After as the next retry delay."""
    if not exc.retryable:
        return ApplicationError(exc.message, _details(exc), type=exc.error_type, non_retryable=True)
    assert isinstance(exc, KadoRetryableError)
    delays = [d for d in (exc.retry_after, min_delay_seconds) if d is not None]
    return ApplicationError(
        exc.message,
        _details(exc),
        type=exc.error_type,
        next_retry_delay=timedelta(seconds=max(delays)) if delays else None,
        # Being told to wait is expected: no traceback for it.
        category=(
            ApplicationErrorCategory.BENIGN
            if isinstance(exc, KadoRateLimited)
            else ApplicationErrorCategory.UNSPECIFIED
        ),
    )


class KadoActivities:
    """Activities bound to the worker's shared `KadoClient`."""

    def __init__(self, client: KadoClient) -> None:
        self._client = client

    def all(self) -> list[Callable[..., Any]]:
        return [self.fetch_order, self.wait_for_order_change]

    async def _get_order(self, order_id: str, call: str) -> KadoOrder:
        """The provider call, counted by outcome (`ok` or the error's stable type) and timed."""
        started = time.monotonic()
        outcome = "error"  # an unexpected exception (a bug)
        try:
            order = await self._client.get_order(order_id)
            outcome = "ok"
            return order
        except KadoError as exc:
            outcome = exc.error_type
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"  # the workflow cancelled the wait (poll_now)
            raise
        finally:
            elapsed = timedelta(seconds=time.monotonic() - started)
            order_metrics.provider_call(order_metrics.KADO, call, outcome, elapsed)

    @activity.defn(name=FETCH_ORDER_ACTIVITY)
    async def fetch_order(self, input: FetchOrderInput) -> KadoOrder:
        """The order as the provider reports it now. Retry it with the workflow's retry policy:
        transient errors are retryable (after Retry-After), the rest are not."""
        try:
            return await self._get_order(input.order_id, "fetch_order")
        except KadoError as exc:
            raise to_application_error(exc) from None

    @activity.defn(name=WAIT_FOR_ORDER_CHANGE_ACTIVITY)
    async def wait_for_order_change(self, input: WaitForOrderChangeInput) -> KadoOrder:
        """One poll per attempt; "not changed yet" is a BENIGN retryable error whose
        `next_retry_delay` grows with the attempt number (see `WaitForOrderChangeInput`)."""
        attempt = activity.info().attempt
        delay = input.delay_seconds(attempt)
        try:
            order = await self._get_order(input.order_id, "poll_order")
        except KadoMalformedResponse as exc:
            if not input.retry_malformed:
                raise to_application_error(exc) from None
            # After payment a garbled answer (an HTML error page, a cut body) is most likely
            # passing: poll again on the usual cadence; the workflow's deadline bounds it.
            raise ApplicationError(
                exc.message,
                _details(exc),
                type=exc.error_type,
                next_retry_delay=timedelta(seconds=delay),
                # The client logged the warning already: no traceback per retry.
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        except KadoError as exc:
            raise to_application_error(exc, min_delay_seconds=delay) from None
        if input.changed(order):
            return order
        status = order.transfer_status.value if order.transfer_status else "missing"
        waiting_for = "readiness or a new transferStatus" if input.await_ready else "a change"
        raise ApplicationError(
            f"order {input.order_id} unchanged (transferStatus={status}, attempt {attempt}); "
            f"waiting for {waiting_for}, next poll in {delay:g}s",
            type=NOT_CHANGED_ERROR_TYPE,
            next_retry_delay=timedelta(seconds=delay),
            category=ApplicationErrorCategory.BENIGN,
        )
