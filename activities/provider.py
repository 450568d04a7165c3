"""Provider activities: fetch an order; wait until it changes. One implementation for every
provider, bound to the provider's adapter and client and registered under the adapter's activity
names (committed histories hold them).

Waiting uses Temporal's *infrequent polling* pattern: an attempt of the wait activity returns the
order if it changed, and otherwise raises a BENIGN `ApplicationError` (the adapter's NOT_CHANGED
error type) with `next_retry_delay` set to the next adaptive interval; the retry policy is the
loop. Attempts are not recorded in the workflow history (only the final scheduled/started/
completed events are), so a wait of any length costs the same few events, but Temporal Cloud
bills every attempt. With the order's `wait_attempt` at 0 (the default) an attempt polls once:
one billed action per poll, no worker slot held between polls. With `wait_attempt` > 0 an attempt
polls inside on the same schedule (`offramp/providers/polling.py`) for up to that long, without
heartbeats (each heartbeat that reaches the server is billed too): one action per attempt instead
of per poll, at the price of a worker slot per waiting order and a dead worker noticed only after
its attempt's timeout (README "Cost").

`next_retry_delay` is not capped by the policy's `maximum_interval` (Temporal server >= 1.25,
temporalio/temporal#6063). When `schedule_to_close_timeout` passes, or the next delay would end
after it (the server then fails at once rather than wait), the activity fails with a timeout
(cause `TimeoutError`, type SCHEDULE_TO_CLOSE): the workflow's "no progress by the deadline".
To wake early (a `poll_now` signal), the workflow cancels the pending wait (it is between
attempts, so the cancel is immediate) and fetches or starts a new wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from offramp.observability import order_metrics
from offramp.providers import ErrorKind, ProviderAdapter, ProviderClient, ProviderError
from offramp.providers.polling import poll_number_at


def to_application_error(
    exc: ProviderError, min_delay_seconds: float | None = None
) -> ApplicationError:
    """A client error as the ApplicationError Temporal understands: stable `type`, non-retryable
    unless the failure is transient, and the provider's Retry-After as the next retry delay."""
    if not exc.retryable:
        return ApplicationError(exc.message, exc.details(), type=exc.error_type, non_retryable=True)
    delays = [d for d in (exc.retry_after, min_delay_seconds) if d is not None]
    return ApplicationError(
        exc.message,
        exc.details(),
        type=exc.error_type,
        next_retry_delay=timedelta(seconds=max(delays)) if delays else None,
        # Being told to wait is expected: no traceback for it.
        category=(
            ApplicationErrorCategory.BENIGN if exc.benign else ApplicationErrorCategory.UNSPECIFIED
        ),
    )


class ProviderActivities:
    """One provider's activities, bound to the worker's shared client for it."""

    def __init__(self, adapter: ProviderAdapter, client: ProviderClient) -> None:
        self._adapter = adapter
        self._client = client
        names = adapter.activities

        # Registered under the adapter's names; the argument arrives as JSON and is validated
        # against the adapter's input model.
        @activity.defn(name=names.fetch_order)
        async def fetch_order(input: Any) -> Any:
            return await self._fetch_order(input)

        @activity.defn(name=names.wait_for_order_change)
        async def wait_for_order_change(input: Any) -> Any:
            return await self._wait_for_order_change(input)

        self.fetch_order = fetch_order
        self.wait_for_order_change = wait_for_order_change

    def all(self) -> list[Callable[..., Any]]:
        return [self.fetch_order, self.wait_for_order_change]

    async def _get_order(self, order_id: str, call: str) -> Any:
        """The provider call, counted by outcome (`ok` or the error's stable type) and timed."""
        started = time.monotonic()
        outcome = "error"  # an unexpected exception (a bug)
        try:
            order = await self._client.get_order(order_id)
            outcome = "ok"
            return order
        except ProviderError as exc:
            outcome = exc.error_type
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"  # the workflow cancelled the wait (poll_now)
            raise
        finally:
            elapsed = timedelta(seconds=time.monotonic() - started)
            order_metrics.provider_call(self._adapter.name, call, outcome, elapsed)

    async def _fetch_order(self, raw: Any) -> Any:
        """The order as the provider reports it now. Retry it with the workflow's retry policy:
        transient errors are retryable (after Retry-After), the rest are not."""
        input = self._adapter.fetch_input_model.model_validate(raw)
        try:
            return await self._get_order(getattr(input, "order_id"), "fetch_order")  # noqa: B009
        except ProviderError as exc:
            raise to_application_error(exc) from None

    async def _wait_for_order_change(self, raw: Any) -> Any:
        """One poll per attempt, or (`attempt_seconds` > 0) polls inside the attempt for up to
        that long on the same schedule: Temporal Cloud bills each attempt, not each poll."""
        input: Any = self._adapter.wait_input_model.model_validate(raw)
        info = activity.info()
        if input.attempt_seconds <= 0:
            return await self._poll_once(input, info.attempt)
        started = time.monotonic()
        waited = (datetime.now(UTC) - info.scheduled_time).total_seconds()
        number = poll_number_at(input, waited)
        not_changed = self._adapter.error_types[ErrorKind.NOT_CHANGED]
        while True:
            try:
                return await self._poll_once(input, number)
            except ApplicationError as err:
                delay = input.delay_seconds(number)
                spent = time.monotonic() - started
                if err.type != not_changed or spent + delay > input.attempt_seconds:
                    raise  # the retry policy carries on (NOT_CHANGED: after `delay`)
            await asyncio.sleep(delay)
            number += 1

    async def _poll_once(self, input: Any, attempt: int) -> Any:
        """One poll; "not changed yet" is a BENIGN retryable error whose `next_retry_delay`
        grows with the poll number (see the adapter's wait input)."""
        delay = input.delay_seconds(attempt)
        try:
            order = await self._get_order(input.order_id, "poll_order")
        except ProviderError as exc:
            if exc.kind is not ErrorKind.MALFORMED or not input.retry_malformed:
                raise to_application_error(exc, min_delay_seconds=delay) from None
            # After payment a garbled answer (an HTML error page, a cut body) is most likely
            # passing: poll again on the usual cadence; the workflow's deadline bounds it.
            raise ApplicationError(
                exc.message,
                exc.details(),
                type=exc.error_type,
                next_retry_delay=timedelta(seconds=delay),
                # The client logged the warning already: no traceback per retry.
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        if input.changed(order):
            return order
        seen = self._adapter.snapshot(order)
        status = seen.labels.status
        waiting_for = f"readiness or a new {status}" if input.await_ready else "a change"
        raise ApplicationError(
            # Shown as the pending wait's "last failure" in the Web UI: say it is a wait.
            f"waiting (not an error): order {input.order_id} unchanged "
            f"({status}={seen.shown_status}, poll {attempt}); "
            f"waiting for {waiting_for}, next poll in {delay:g}s",
            type=self._adapter.error_types[ErrorKind.NOT_CHANGED],
            next_retry_delay=timedelta(seconds=delay),
            category=ApplicationErrorCategory.BENIGN,
        )
