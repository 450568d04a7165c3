"""Activities the payment and the hot-wallet entity use to talk to each other and to read the
wallet's funds: `request_nonce` (signal-with-start), the old `reserve_nonce` (update-with-start,
kept for payment runs started before the signal protocol), `workflow_closed`,
`read_wallet_balances`, and the look-up of a re-run payment's earlier attempts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from temporalio import activity
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError, RPCStatusCode

from activities.redaction import redacted
from offramp.chain import names
from offramp.chain.models import (
    BalancesInput,
    HotWalletInput,
    InsufficientFunds,
    NonceRequestInput,
    NonceReserveInput,
    NonceReserveOutcome,
    PaymentLookup,
    Reservation,
    ReserveResult,
    TxAttempt,
    WalletBalances,
    WalletPolicy,
    WorkflowClosedInput,
)
from offramp.chain.names import (
    ERR_DAILY_CAP,
    ERR_IN_FLIGHT_LIMIT,
    ERR_PAUSED,
    ERR_RELEASED,
)
from offramp.chain.rpc import ChainRuntime, ChainUnavailable, encode_balance_of
from offramp.rejections import RejectReason


def _wait_delay(attempt: int) -> timedelta:
    """Back off while the wallet is full or busy: growing with the attempt, jittered, <= 3 s."""
    return timedelta(seconds=min(0.2 * attempt, 2.0) * (0.5 + random.random()))


async def _is_first_run(client: Client, workflow_id: str, run_id: str) -> bool:
    """Whether the calling workflow run is its id's first (no retry, reset, continue or earlier
    execution). Asks the server about the payment itself: never the entity's query buffer."""
    try:
        info = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return True
        raise
    first = info.workflow_execution_info.first_run_id
    if first and first != run_id:
        return False  # a retry, reset or continued run of the payment
    # A new execution under an id that ran before (only where duplicates are allowed).
    earlier = await client.count_workflows(f'WorkflowId = "{workflow_id}"')
    return earlier.count <= 1


async def previous_hold(
    client: Client, wallet_workflow_ids: list[str], payment_id: str
) -> tuple[int | None, list[TxAttempt]]:
    """The wallet that holds an earlier run of this payment (index in `wallet_workflow_ids`: a
    reservation, with or without signed attempts, or a queued request) and what it signed, as
    that wallet recorded it; (None, []) when no wallet knows it. Only a re-run can have any: a
    first run returns at once without asking an entity (no query per preflight)."""
    info = activity.info()
    if info.workflow_id and await _is_first_run(
        client, info.workflow_id, info.workflow_run_id or ""
    ):
        return None, []
    held: int | None = None
    for index, wallet_workflow_id in enumerate(wallet_workflow_ids):
        lookup = await _lookup(client, wallet_workflow_id, payment_id)
        if lookup is None:
            continue
        reservation = lookup.reservation
        if reservation is not None and reservation.attempts:
            return index, list(reservation.attempts)
        if held is None and (reservation is not None or lookup.queued):
            held = index
    return held, []


async def _lookup(client: Client, wallet_workflow_id: str, payment_id: str) -> PaymentLookup | None:
    handle = client.get_workflow_handle(wallet_workflow_id)
    try:
        lookup: PaymentLookup = await handle.query(
            names.PAYMENT_LOOKUP_QUERY, payment_id, result_type=PaymentLookup
        )
        return lookup
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None  # no entity for this wallet yet: nothing was ever reserved there
        raise
    except WorkflowQueryFailedError:  # an entity still on a worker without `payment_lookup`
        reservation = await handle.query(
            names.RESERVATION_QUERY,
            payment_id,
            result_type=Reservation | None,  # type: ignore[arg-type]
        )
        return PaymentLookup(
            reservation=reservation if isinstance(reservation, Reservation) else None
        )


async def _first_run_started(client: Client, workflow_id: str, run_id: str) -> datetime | None:
    """When the first run of the calling workflow (before retries, resets) started; None if
    the server no longer knows."""
    try:
        current = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        first_id = current.raw_description.workflow_execution_info.first_run_id or run_id
        if first_id == run_id:
            return current.start_time
        first = await client.get_workflow_handle(workflow_id, run_id=first_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return first.start_time


class HotWalletActivities:
    def __init__(self, runtime: ChainRuntime) -> None:
        self.runtime = runtime

    def _policy(self, chain: str) -> WalletPolicy:
        config = self.runtime.settings.chain(chain)
        if config is None:
            return WalletPolicy()
        return WalletPolicy(
            on_insufficient_funds=InsufficientFunds(config.on_insufficient_funds),
            funds_recheck_seconds=config.funds_recheck_seconds,
        )

    @activity.defn(name=names.REQUEST_NONCE_ACTIVITY)
    async def request_nonce(self, inp: NonceRequestInput) -> None:
        """Signal-with-start `request_nonce` on the entity (created lazily). The answer comes
        back to the payment as the signal `nonce_answer`; asking again is harmless."""
        update: dict[str, object] = {"policy": self._policy(inp.params.chain)}
        info = activity.info()
        if inp.request.rerun and info.workflow_id:
            update["first_started_at"] = await _first_run_started(
                activity.client(), info.workflow_id, info.workflow_run_id or ""
            )
        request = inp.request.model_copy(update=update)
        await activity.client().start_workflow(
            names.HOT_WALLET_WORKFLOW,
            HotWalletInput(params=inp.params),
            id=inp.wallet_workflow_id,
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=names.REQUEST_NONCE_SIGNAL,
            start_signal_args=[request],
            static_summary=f"hot wallet {inp.params.address} on {inp.params.chain}",
        )

    @activity.defn(name=names.READ_WALLET_BALANCES_ACTIVITY)
    @redacted
    async def read_wallet_balances(self, inp: BalancesInput) -> WalletBalances:
        """Redacted like the chain activities: no RPC URL reaches the failure (or history)."""
        return await self._read_balances(inp)

    async def _read_balances(self, inp: BalancesInput) -> WalletBalances:
        try:
            served = await self.runtime.served(inp.chain)
        except ChainUnavailable as exc:
            raise ApplicationError(str(exc), type="ChainUnavailable") from None
        if isinstance(served, str):
            raise ApplicationError(served, type="ChainNotServed")
        w3 = served.w3
        holder = to_checksum_address(inp.address)
        native = int(await w3.eth.get_balance(holder))
        tokens: dict[str, int] = {}
        for token in inp.tokens:
            raw = await w3.eth.call(
                {"to": to_checksum_address(token), "data": HexStr(encode_balance_of(holder))}
            )
            tokens[token.lower()] = int.from_bytes(bytes(raw), "big") if raw else 0
        return WalletBalances(native_wei=native, tokens=tokens)

    @activity.defn(name=names.RESERVE_NONCE_ACTIVITY)
    async def reserve_nonce(self, inp: NonceReserveInput) -> NonceReserveOutcome:
        """Old protocol (payment runs started before `nonce-by-signal`): update-with-start."""
        client = activity.client()
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            names.HOT_WALLET_WORKFLOW,
            HotWalletInput(params=inp.params),
            id=inp.wallet_workflow_id,
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"hot wallet {inp.params.address} on {inp.params.chain}",
        )
        try:
            result: ReserveResult = await client.execute_update_with_start_workflow(
                names.RESERVE_UPDATE,
                inp.request,
                start_workflow_operation=start,
                result_type=ReserveResult,
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                if cause.type == ERR_DAILY_CAP:
                    return NonceReserveOutcome(
                        rejection_code=RejectReason.DAILY_CAP, reason=cause.message
                    )
                if cause.type in (ERR_IN_FLIGHT_LIMIT, ERR_PAUSED):
                    raise ApplicationError(
                        cause.message,
                        type=cause.type,
                        next_retry_delay=_wait_delay(activity.info().attempt),
                        category=ApplicationErrorCategory.BENIGN,
                    ) from None
                if cause.type == ERR_RELEASED:
                    raise ApplicationError(
                        cause.message, type=cause.type, non_retryable=True
                    ) from None
            raise
        except RPCError as exc:
            if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:  # too many in-flight updates
                raise ApplicationError(
                    "the hot wallet is busy",
                    type="WalletBusy",
                    next_retry_delay=_wait_delay(activity.info().attempt),
                    category=ApplicationErrorCategory.BENIGN,
                ) from None
            raise
        return NonceReserveOutcome(nonce=result.nonce)

    @activity.defn(name=names.WORKFLOW_CLOSED_ACTIVITY)
    async def workflow_closed(self, inp: WorkflowClosedInput) -> bool:
        """Whether a (payment) workflow has closed, or never existed."""
        try:
            description = await activity.client().get_workflow_handle(inp.workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return True
            raise
        return bool(
            description.raw_description.workflow_execution_info.status
            != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
        )

    def all(self) -> list[Any]:
        return [
            self.request_nonce,
            self.read_wallet_balances,
            self.reserve_nonce,
            self.workflow_closed,
        ]
