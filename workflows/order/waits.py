"""The order workflow's provider calls: fetch the order, wait until it is ready, follow it until
settled. Waiting uses the adapter's infrequent-poll activity: a wait of any length costs the same
few history events; `poll_now` (or a cancel, before sending) interrupts it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from offramp.orders.checks import already_funded_rejection
    from offramp.orders.models import Stage
    from offramp.providers import ErrorKind

from workflows.order.continuation import OrderContinuation
from workflows.order.failures import (
    failure_kind,
    gave_up_waiting,
    last_attempt_failure,
    poll_retry,
    provider_retry,
    rejection_reason,
    workflow_cancel,
)
from workflows.order.patches import (
    PATCH_ALREADY_FUNDED,
    PATCH_RETRY_MALFORMED_AFTER_PAYMENT,
    PATCH_WORKFLOW_CANCEL,
)
from workflows.order.state import POLL_NOW_MIN_GAP, Seen, remaining

T = TypeVar("T")

# A malformed provider response may be a passing glitch: re-fetch this often before rejecting.
MALFORMED_FETCH_ATTEMPTS: Final = 3
# One provider HTTP call (the client's own timeout is 10 s): a worker that died mid-call is
# noticed after this long and the call retried elsewhere.
PROVIDER_CALL_TIMEOUT: Final = timedelta(seconds=15)


class Interrupted(Exception):
    """A wait ended early: cancel requested or poll_now signalled."""


class ProviderWaits(OrderContinuation):
    def _seen(self, raw: Any) -> Seen:
        seen = Seen(raw, self._adapter.snapshot(raw))
        self._observe(seen.view)
        return seen

    async def _fetch_order(self) -> Seen | None:
        adapter = self._adapter
        for attempt in range(1, MALFORMED_FETCH_ATTEMPTS + 1):
            try:
                raw: BaseModel = await workflow.execute_activity(
                    adapter.activities.fetch_order,
                    adapter.fetch_input(self._input.order_id),
                    result_type=adapter.order_model,
                    start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
                    # An unreachable provider is retried until the ready deadline.
                    schedule_to_close_timeout=remaining(self._ready_deadline),
                    retry_policy=provider_retry(adapter),
                    summary=f"fetch {adapter.title} order {self._input.order_id}",
                )
            except ActivityError as err:
                kind, _ = failure_kind(adapter, err)
                if kind is ErrorKind.MALFORMED and attempt < MALFORMED_FETCH_ATTEMPTS:
                    await workflow.sleep(timedelta(seconds=5 * attempt), summary="re-fetch")
                    continue
                self._end_before_sending(err, "the provider did not answer in time")
                return None
            return self._seen(raw)
        raise ApplicationError("unreachable")  # pragma: no cover

    async def _await_ready(self, order: Seen) -> Seen | None:
        deadline = self._ready_deadline
        while True:
            self._continue_if_long()
            try:
                raw: BaseModel = await self._interruptible(
                    workflow.execute_activity(
                        self._adapter.activities.wait_for_order_change,
                        self._wait_input(await_ready=True, last=order.view.status),
                        result_type=self._adapter.order_model,
                        start_to_close_timeout=self._wait_call_timeout(),
                        schedule_to_close_timeout=remaining(deadline),
                        retry_policy=poll_retry(self._adapter),
                        summary="wait until the order is ready for the deposit",
                    )
                )
            except Interrupted:
                if self._cancel is not None:
                    self._cancelled()
                    return None
                continue
            except ActivityError as err:
                self._end_before_sending(err, "the order never became ready for the deposit")
                return None
            changed = self._seen(raw)
            view = changed.view
            if view.expired:
                self._set_stage(Stage.EXPIRED, "the provider expired the order before it was ready")
                return None
            if view.ready or view.terminal:
                return changed
            # In transit before we paid: the caller refuses it (waiting would end EXPIRED).
            if already_funded_rejection(view) is not None and workflow.patched(
                PATCH_ALREADY_FUNDED
            ):
                return changed
            order = changed

    async def _track(
        self, last: str | None, deadline: datetime, unknown_since: datetime | None = None
    ) -> None:
        """Follow a paid order from status `last` until its ending or `deadline`."""
        # A malformed answer is retried inside the wait (no history per retry) until the deadline.
        retry_malformed = workflow.patched(PATCH_RETRY_MALFORMED_AFTER_PAYMENT)
        while True:
            self._continue_if_long(last_status=last, deadline=deadline, unknown_since=unknown_since)
            alert_at = (
                unknown_since + self._input.unknown_alert_after
                if unknown_since is not None and not self._state.needs_attention
                else None
            )
            try:
                raw: BaseModel = await self._interruptible(
                    workflow.execute_activity(
                        self._adapter.activities.wait_for_order_change,
                        self._wait_input(
                            await_ready=False,
                            last=last,
                            retry_malformed=retry_malformed,
                            until_final=True,
                        ),
                        result_type=self._adapter.order_model,
                        start_to_close_timeout=self._wait_call_timeout(),
                        schedule_to_close_timeout=remaining(deadline),
                        retry_policy=poll_retry(self._adapter, retry_malformed=retry_malformed),
                        summary=f"follow the order until settled (now {last or 'missing'})",
                    ),
                    alert_at=alert_at,
                    on_alert=lambda: self._attention(
                        f"provider status unknown for over {self._input.unknown_alert_after}"
                    ),
                    cancellable=False,
                )
            except Interrupted:
                continue
            except ActivityError as err:
                if gave_up_waiting(err):
                    self._unsettled_at_deadline(err)
                    return
                # The order vanished or the provider refuses us after we paid: keep the
                # evidence, flag it, and end unresolved (our transaction is confirmed on chain;
                # whether the provider credited it is not known).
                _, message = failure_kind(self._adapter, err)
                self._attention(f"provider error after payment: {message}")
                self._set_stage(Stage.UNRESOLVED, message)
                return
            view = self._seen(raw).view
            if view.settled:
                self._set_stage(Stage.SETTLED, view.status_text or "settled")
                return
            if view.failed:
                self._attention("the provider failed the order after our payment")
                self._set_stage(Stage.PROVIDER_FAILED, view.status_text or "failed")
                return
            # The provider lost track of it: a person is called after `unknown_alert_after`.
            unknown_since = (unknown_since or workflow.now()) if view.status_unknown else None
            last = view.status

    def _unsettled_at_deadline(self, err: ActivityError) -> None:
        """The settlement deadline passed: flag it, saying what we last heard (never that the
        provider confirmed anything it did not)."""
        last_failure = last_attempt_failure(err)
        malformed = self._adapter.error_types[ErrorKind.MALFORMED]
        if last_failure is not None and last_failure.type == malformed:
            why = (
                "the provider's answers were malformed until the settlement deadline "
                f"(last: {last_failure.message}); the order's settlement is unknown"
            )
            self._attention(why)
        else:
            why = "the provider did not settle in time"
            self._attention("no settlement by the deadline")
        self._set_stage(Stage.UNRESOLVED, why)

    def _end_before_sending(self, err: ActivityError, on_timeout: str) -> None:
        """A provider call failed for good before anything was sent: EXPIRED on the deadline,
        otherwise REJECTED with the reason the failure names. A workflow cancel is re-raised (it
        is an ending of its own, see `run`)."""
        if workflow_cancel(err) and workflow.patched(PATCH_WORKFLOW_CANCEL):
            raise err
        if gave_up_waiting(err):
            self._set_stage(Stage.EXPIRED, on_timeout)
            return
        self._reject(*rejection_reason(self._adapter, err))

    def _wait_input(
        self,
        *,
        await_ready: bool,
        last: str | None,
        retry_malformed: bool = False,
        until_final: bool = False,
    ) -> BaseModel:
        return self._adapter.wait_input(
            order_id=self._input.order_id,
            await_ready=await_ready,
            last_status=last,
            retry_malformed=retry_malformed,
            initial_interval_seconds=self._input.poll_initial_interval.total_seconds(),
            max_interval_seconds=self._poll_cap().total_seconds(),
            attempt_seconds=self._input.wait_attempt.total_seconds(),
            until_final=until_final,
        )

    def _poll_cap(self) -> timedelta:
        """The longest gap between polls: adaptive up to `poll_max_interval`, or with webhooks
        (they wake the order) a sparse safety poll."""
        cap = self._input.safety_poll_interval if self._input.webhooks else None
        return max(cap or self._input.poll_max_interval, self._input.poll_initial_interval)

    def _wait_call_timeout(self) -> timedelta:
        # A long attempt's worker dying is noticed when the attempt should have ended.
        return PROVIDER_CALL_TIMEOUT + self._input.wait_attempt

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
        self._poll_deferred = False  # this poll answers any wake deferred so far
        self._poll_started_at = workflow.now()
        task: asyncio.Future[T] = asyncio.ensure_future(waiting)

        def interrupted() -> bool:
            return self._poll_now or (cancellable and self._cancel is not None)

        condition = lambda: task.done() or interrupted()  # noqa: E731
        await self._until(condition, alert_at if on_alert is not None else None, on_alert)
        if task.done():
            return task.result()
        task.cancel()
        # The cancelled wait ends with a cancellation (or, in a race, its own result or error):
        # none of it matters any more, the caller polls afresh or stops.
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await task
        raise Interrupted

    async def _until(
        self,
        condition: Callable[[], bool],
        alert_at: datetime | None,
        on_alert: Callable[[], None] | None,
    ) -> None:
        """Wait for `condition`, calling `on_alert` once at `alert_at` (one timer) and turning a
        deferred poll_now into a poll when its gap ends (one timer per gap). Without a deferred
        wake the commands are those of the code before PATCH_DEFERRED_POLL_NOW."""
        while True:
            deferred = self._poll_deferred
            gap_end = self._poll_started_at + POLL_NOW_MIN_GAP if deferred else None
            ends = [t for t in (alert_at, gap_end) if t is not None]

            def woken(deferred: bool = deferred) -> bool:
                # A wake deferred since this wait began re-arms it with the gap's timer.
                return condition() or (self._poll_deferred and not deferred)

            if not ends:
                await workflow.wait_condition(woken)
            else:
                try:
                    await workflow.wait_condition(
                        woken,
                        timeout=remaining(min(ends)),
                        timeout_summary="attention alarm" if gap_end is None else "poll_now",
                    )
                except TimeoutError:
                    now = workflow.now()
                    if alert_at is not None and alert_at <= now and on_alert is not None:
                        alert_at = None
                        on_alert()
                    if gap_end is not None and gap_end <= now:
                        self._poll_now = True
            if condition():
                return
