"""Failure classification for the order workflow (pure): what a failed activity means, and the
retry policies of the provider calls, from the adapter's error kinds."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from offramp.orders.models import RejectReason
    from offramp.providers import ErrorKind, ProviderAdapter


def provider_retry(adapter: ProviderAdapter) -> RetryPolicy:
    """One provider call (a fetch): transient failures retried, the provider's refusals not."""
    types = adapter.error_types
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=0,
        non_retryable_error_types=[
            types[ErrorKind.NOT_FOUND],
            types[ErrorKind.REQUEST_REJECTED],
            types[ErrorKind.MALFORMED],
        ],
    )


def poll_retry(adapter: ProviderAdapter, *, retry_malformed: bool = False) -> RetryPolicy:
    # The wait is the retry loop: unlimited attempts, delays chosen by the activity.
    types = adapter.error_types
    non_retryable = [types[ErrorKind.NOT_FOUND], types[ErrorKind.REQUEST_REJECTED]]
    if not retry_malformed:
        non_retryable.append(types[ErrorKind.MALFORMED])
    return RetryPolicy(
        initial_interval=timedelta(seconds=5),
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=0,
        non_retryable_error_types=non_retryable,
    )


def failure_kind(adapter: ProviderAdapter, err: ActivityError) -> tuple[ErrorKind | None, str]:
    """The error kind of a failed provider call (None: not one of the provider's) and its
    message."""
    type_name, message = failure_type(err)
    kinds = {name: kind for kind, name in adapter.error_types.items()}
    return kinds.get(type_name), message


def failure_type(err: ActivityError) -> tuple[str, str]:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.type or "", cause.message
    return type(cause).__name__ if cause else "", str(cause or err)


def workflow_cancel(err: BaseException) -> bool:
    """The workflow itself was asked to cancel and `err` is that cancellation arriving (as the
    awaited activity's cancellation, or as asyncio's)."""
    return workflow.cancellation_reason() is not None and is_cancelled_exception(err)


def last_attempt_failure(err: ActivityError) -> ApplicationError | None:
    """The failure of the last attempt of a wait that ran out of time: the cause itself, or the
    cause of the timeout (the server attaches the last attempt's failure to it)."""
    cause = err.cause
    if isinstance(cause, ActivityTimeoutError):
        cause = cause.cause
    return cause if isinstance(cause, ApplicationError) else None


def gave_up_waiting(err: ActivityError) -> bool:
    """The wait's deadline passed. The server reports either a timeout or, when the next retry
    would fall after the deadline, the last attempt's (retryable) failure."""
    cause = err.cause
    if isinstance(cause, ActivityTimeoutError):
        return True
    return isinstance(cause, ApplicationError) and not cause.non_retryable


def malformed_reason(adapter: ProviderAdapter, err: ActivityError) -> RejectReason:
    """A malformed order, by the field it names (dotted, in the provider's names): a field of the
    deposit address, or of the object holding the amount or the token address."""
    cause = err.cause
    field = ""
    if isinstance(cause, ApplicationError) and cause.details:
        details = cause.details[0]
        if isinstance(details, dict):
            field = str(details.get("field", ""))
    labels = adapter.labels
    if field.startswith(labels.deposit_address):
        return RejectReason.DEPOSIT_ADDRESS_INVALID
    if field.startswith(_group(labels.amount)):
        return RejectReason.AMOUNT_INVALID
    if field.startswith(_group(labels.token_address)):
        return RejectReason.TOKEN_ADDRESS_MISMATCH
    return RejectReason.ORDER_MALFORMED


def _group(label: str) -> str:
    """`payAmount.amount` -> `payAmount`: the provider's object that holds the field."""
    return label.split(".", 1)[0]


def rejection_reason(adapter: ProviderAdapter, err: ActivityError) -> tuple[RejectReason, str]:
    """Why a provider call that failed for good before sending rejects the order."""
    kind, message = failure_kind(adapter, err)
    if kind is ErrorKind.NOT_FOUND:
        return RejectReason.ORDER_NOT_FOUND, message
    if kind is ErrorKind.MALFORMED:
        return malformed_reason(adapter, err), message
    # The provider refused the request (4xx) or the id.
    return RejectReason.PROVIDER_REFUSED, message
