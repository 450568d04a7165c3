"""The send pipeline: `Payment` (one payment, run as a child of an order) and `NonceFill`
(a 0-value self-transfer that uses up an abandoned nonce).

Payment: preflight (every refusal before any nonce is taken) -> nonce from the hot-wallet entity ->
fee quote -> every tx field fixed in history -> sign-and-broadcast (a retry yields the same bytes
and hash) -> wait for the confirmations on the canonical chain -> outcome. Stuck: bump the fees by
geth's rule up to the cap, then flag for a person and keep waiting. Dropped or reorged: broadcast
the same bytes again. Every hash signed for the nonce is kept.

How an order workflow uses it (see tests/workflows/test_payment_child.py)::

    outcome: PaymentOutcome = await workflow.execute_child_workflow(
        PaymentWorkflow.run,  # workflow type "Payment"
        PaymentRequest(payment_id=order_id, chain="anvil", asset="USDC", recipient=address,
                       amount=Decimal("12.5"), forbidden_recipients=[...],
                       progress_signal="payment_progress"),
        id=payment_workflow_id(order_id),          # "payment-<order id>": never paid twice
        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
    )

- `outcome.status`: confirmed | reverted | rejected (before any nonce; `rejection_code`, `reason`,
  `nonce_reserved` False) | cancelled (before signing) | nonce_conflict | transfer_mismatch
  (`needs_attention` for the last three and reverted).
- The parent's `progress_signal` handler receives a `PaymentProgress` when the payment's attention
  flag is raised, changes or clears (patch `quiet-progress`; runs before it also sent one when the
  nonce was reserved, "a tx may exist", and on each new hash). A client can query `state`
  (PaymentState) for every step.
- Cancelling the child before a nonce is reserved ends it as `cancelled`; after that a
  cancellation is ignored and the payment runs to its outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from offramp.chain import fees, names
    from offramp.chain.models import (
        AwaitInput,
        AwaitKind,
        AwaitResult,
        BroadcastInput,
        BroadcastKind,
        BroadcastResult,
        FeeQuote,
        FillOutcome,
        FillRequest,
        HotWalletParams,
        NonceAnswer,
        NonceAnswerKind,
        NonceRequest,
        NonceRequestInput,
        NonceReserveInput,
        NonceReserveOutcome,
        NonceSettledSignal,
        PaymentOutcome,
        PaymentProgress,
        PaymentRequest,
        PaymentStage,
        PaymentState,
        PaymentStatus,
        PreflightAccepted,
        PreflightResult,
        ReleaseSignal,
        ReservationStatus,
        ReserveRequest,
        SendTuning,
        TransferExpectation,
        TxAttempt,
        TxBroadcastSignal,
        TxFields,
        TxTemplate,
    )
    from offramp.observability import order_metrics
    from offramp.rejections import RejectReason
    from offramp.task_queues import signer_task_queue

_PREFLIGHT_TIMEOUT = timedelta(seconds=60)
_RPC_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
_RESERVE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=2),
)
_EVENT_LIMIT = 200
# The nonce by signal (request_nonce -> nonce_answer) instead of update-with-start `reserve`.
_PATCH_NONCE_BY_SIGNAL = "nonce-by-signal"
# Told the wallet's queue is full, wait to be called back (NonceAnswer.call_back) instead of
# backing off alone (30 s doubling to an hour: the queue could stand empty meanwhile).
_PATCH_CALL_BACK = "payment-call-back"
# The parent hears only what it acts on: attention raised, changed or cleared (its outcome carries
# the nonce, the hashes and the wallet). It heard every step before: 2 billed signals per payment.
_PATCH_QUIET_PROGRESS = "quiet-progress"
# Ask the entity again only after this long without an answer (an operator reset it, ...).
_REASK_AFTER = timedelta(hours=1)
_QUICK_REBROADCASTS = 3
# History bound (workflow.patched): after this many history-growing retries of one nonce
# (re-broadcasts after a drop or reorg, fee bumps, waits for funds) the payment flags a person and
# stops adding to its history: one long wait follows, in which the activity itself re-sends the
# latest attempt while the node does not know it. A round adds at most ~25 events, so a payment
# stays under ~500 events (the server warns at 10,240 and stops at 51,200).
MAX_SEND_ROUNDS = 16
PATCH_BOUNDED_SEND_ROUNDS = "bounded-send-rounds"


def _signer_queue() -> str:
    """Signing runs only on workers that hold a key (offramp.task_queues). The command's task
    queue is not compared on replay, so runs recorded before this change replay unchanged."""
    return signer_task_queue(workflow.info().task_queue)


class _Sender:
    """Fix, sign, broadcast, watch, bump, re-broadcast: one nonce until its fate is known."""

    def __init__(
        self,
        *,
        chain: str,
        chain_id: int,
        sender: str,
        payment_id: str,
        wallet_workflow_id: str,
        tuning: SendTuning,
        expectation: TransferExpectation | None,
        state: PaymentState,
        on_progress: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.sender = sender
        self.payment_id = payment_id
        self.wallet_workflow_id = wallet_workflow_id
        self.tuning = tuning
        self.expectation = expectation
        self.state = state
        self.bumping = True
        self.on_progress = on_progress
        self.rounds = 0  # history-growing retries of the nonce so far (this run)
        self.out_of_rounds = False

    async def progress(self) -> None:
        attempts = "\n".join(
            f"- `{a.tx_hash}` maxFee {a.fields.max_fee_per_gas} wei, sent {a.broadcasts}x: "
            f"{a.last_result}"
            for a in self.state.attempts
        )
        workflow.set_current_details(
            f"**{self.state.stage.value}** nonce {self.state.nonce}\n\n{attempts}"
            + (
                f"\n\n**attention**: {self.state.attention_reason}"
                if self.state.needs_attention
                else ""
            )
        )
        if self.on_progress is not None:
            await self.on_progress()

    def event(self, line: str) -> None:
        self.state.events.append(f"{workflow.now().isoformat(timespec='seconds')} {line}")
        del self.state.events[:-_EVENT_LIMIT]

    async def attention(self, reason: str) -> None:
        self.state.needs_attention = True
        self.state.attention_reason = reason
        self.event(f"ATTENTION {reason}")
        await self.progress()

    async def _quote(self) -> FeeQuote:
        quote: FeeQuote = await workflow.execute_activity(
            names.QUOTE_FEES_ACTIVITY,
            self.chain,
            result_type=FeeQuote,
            start_to_close_timeout=timedelta(seconds=self.tuning.rpc_timeout_seconds),
            retry_policy=_RPC_RETRY,
            summary="fee quote",
        )
        return quote

    async def _signal_wallet(self, signal: str, arg: object) -> None:
        try:
            await workflow.get_external_workflow_handle(self.wallet_workflow_id).signal(signal, arg)
        except Exception as exc:  # the nonce's fate is the payment's; the entity only learns it
            self.event(f"could not tell the hot wallet ({signal}): {exc}")

    async def _send(self, fields: TxFields) -> BroadcastResult:
        # The activity's input (every field) is in history before anything is signed.
        result: BroadcastResult = await workflow.execute_activity(
            names.SIGN_AND_BROADCAST_ACTIVITY,
            BroadcastInput(chain=self.chain, fields=fields, sender=self.sender),
            result_type=BroadcastResult,
            task_queue=_signer_queue(),
            start_to_close_timeout=timedelta(seconds=self.tuning.rpc_timeout_seconds),
            retry_policy=_RPC_RETRY,
            summary=f"sign and broadcast nonce {fields.nonce}",
        )
        known = next((a for a in self.state.attempts if a.fields == fields), None)
        if known is not None:
            if known.tx_hash != result.tx_hash:
                raise ApplicationError(
                    f"signing is not deterministic: {known.tx_hash} != {result.tx_hash}",
                    non_retryable=True,
                )
            known.broadcasts += 1
            order_metrics.payment_rebroadcast(self.chain)
            known.last_result = result.kind.value
            self.event(f"re-broadcast {result.tx_hash}: {result.kind.value}")
        else:
            self.state.attempts.append(
                TxAttempt(
                    fields=fields,
                    tx_hash=result.tx_hash,
                    last_result=result.kind.value,
                    created_at=workflow.now(),
                )
            )
            self.event(
                f"broadcast {result.tx_hash} nonce {fields.nonce} maxFee {fields.max_fee_per_gas} "
                f"tip {fields.max_priority_fee_per_gas}: {result.kind.value}"
            )
            await self.progress()
            await self._signal_wallet(
                names.TX_BROADCAST_SIGNAL,
                TxBroadcastSignal(
                    payment_id=self.payment_id,
                    nonce=fields.nonce,
                    tx_hash=result.tx_hash,
                    fields=fields,
                ),
            )
        return result

    def _spend_round(self) -> bool:
        """Count one history-growing retry; True (no more) once MAX_SEND_ROUNDS are spent. The
        patch is asked only then: a history recorded before the bound keeps its old retries."""
        self.rounds += 1
        if self.rounds > MAX_SEND_ROUNDS and workflow.patched(PATCH_BOUNDED_SEND_ROUNDS):
            self.out_of_rounds = True
        return self.out_of_rounds

    async def _bumped(self, old: TxFields) -> TxFields | None:
        quote = await self._quote()
        new = fees.bump(
            fees.Fees(old.max_fee_per_gas, old.max_priority_fee_per_gas),
            fees.Fees(quote.max_fee_per_gas, quote.max_priority_fee_per_gas),
            self.tuning.max_fee_per_gas_cap_wei,
        )
        if new is None:
            self.bumping = False
            await self.attention(
                f"fee cap {self.tuning.max_fee_per_gas_cap_wei} wei reached: not bumping nonce "
                f"{old.nonce} further, still waiting for one of its transactions"
            )
            return None
        order_metrics.payment_fee_bump(self.chain)
        return old.model_copy(
            update={
                "max_fee_per_gas": new.max_fee_per_gas,
                "max_priority_fee_per_gas": new.max_priority_fee_per_gas,
            }
        )

    async def _broadcast(self, fields: TxFields) -> None:
        """Broadcast `fields`, acting on the node's answer until a tx of ours can be pending."""
        while True:
            result = await self._send(fields)
            kind = result.kind
            if kind in (BroadcastKind.SENT, BroadcastKind.ALREADY_KNOWN):
                return
            if kind is BroadcastKind.NONCE_TOO_LOW:
                return  # ours mined, or a conflict: the wait tells which
            if kind is BroadcastKind.UNDERPRICED and len(self.state.attempts) > 1:
                return  # an earlier attempt of ours holds the nonce in the pool
            if self._spend_round():
                return  # _follow's bounded wait re-sends these fields
            if kind in (BroadcastKind.UNDERPRICED, BroadcastKind.FEE_BELOW_BASE):
                bumped = await self._bumped(fields) if self.bumping else None
                if bumped is None:
                    return
                fields = bumped
                continue
            # Insufficient funds: keep the nonce and the fields, alert, try again later.
            await self.attention(
                f"insufficient funds to broadcast nonce {fields.nonce}: {result.message}"
            )
            await workflow.sleep(
                timedelta(seconds=self.tuning.bump_after_seconds), summary="wait for funds"
            )

    async def run(self, template: TxTemplate, nonce: int) -> AwaitResult:
        if self.state.attempts:
            # A previous run signed these: follow them (same nonce, same hashes), don't resend.
            self.event(f"resuming {len(self.state.attempts)} signed attempt(s) for nonce {nonce}")
            self.state.stage = PaymentStage.CONFIRMING
            return await self._follow(nonce)
        quote = await self._quote()
        fields = TxFields(
            chain_id=self.chain_id,
            nonce=nonce,
            to=template.to,
            value=template.value,
            data=template.data,
            gas=template.gas,
            max_fee_per_gas=quote.max_fee_per_gas,
            max_priority_fee_per_gas=quote.max_priority_fee_per_gas,
        )
        self.state.stage = PaymentStage.SENDING
        await self._broadcast(fields)
        self.state.stage = PaymentStage.CONFIRMING
        return await self._follow(nonce)

    async def _await(self, nonce: int, *, bounded: bool = False) -> AwaitResult:
        """One wait for the nonce's fate. `bounded`: no STUCK, no DROPPED or REORGED; the
        activity re-sends the latest attempt itself (same bytes) while the node lacks it."""
        resend = self.state.attempts[-1].fields if bounded else None
        result: AwaitResult = await workflow.execute_activity(
            names.AWAIT_TRANSACTION_ACTIVITY,
            AwaitInput(
                chain=self.chain,
                sender=self.sender,
                nonce=nonce,
                tx_hashes=self.state.tx_hashes,
                confirmations=self.tuning.confirmations,
                poll_interval_seconds=self.tuning.poll_interval_seconds,
                stuck_after_seconds=(
                    self.tuning.bump_after_seconds if self.bumping and not bounded else None
                ),
                expectation=self.expectation,
                resend=resend,
                resend_every_seconds=self._slow_rebroadcast().total_seconds() if bounded else None,
            ),
            result_type=AwaitResult,
            # Re-sending signs: only then on the signer queue; a plain wait reads the chain.
            task_queue=_signer_queue() if bounded else None,
            start_to_close_timeout=timedelta(days=7),
            heartbeat_timeout=timedelta(seconds=max(10.0, 5 * self.tuning.poll_interval_seconds)),
            retry_policy=_RPC_RETRY,
            summary=f"wait for nonce {nonce}" + (", re-sending it when dropped" if bounded else ""),
        )
        return result

    def _slow_rebroadcast(self) -> timedelta:
        return timedelta(seconds=10 * self.tuning.poll_interval_seconds)

    async def _follow_bounded(self, nonce: int) -> AwaitResult:
        """Past MAX_SEND_ROUNDS: flag a person, then wait without growing the history."""
        self.bumping = False
        await self.attention(
            f"nonce {nonce}: {MAX_SEND_ROUNDS} re-broadcasts, fee bumps or waits for funds "
            "without a confirmation; no more fee bumps. Still waiting for one of its transactions "
            "and re-sending the latest when the node drops it: check the RPC node, the fees and "
            "the hot wallet's balance"
        )
        while True:
            result = await self._await(nonce, bounded=True)
            if result.kind not in (AwaitKind.DROPPED, AwaitKind.REORGED, AwaitKind.STUCK):
                return result
            # Only a worker that ignores `resend` answers this: wait, then ask again.
            await workflow.sleep(self._slow_rebroadcast(), summary="wait before asking again")

    async def _follow(self, nonce: int) -> AwaitResult:
        drops = 0
        while True:
            if self.out_of_rounds:
                return await self._follow_bounded(nonce)
            result = await self._await(nonce)
            if result.kind in (AwaitKind.DROPPED, AwaitKind.REORGED):
                if self._spend_round():
                    continue
                drops += 1
                if drops > _QUICK_REBROADCASTS:  # a node that keeps losing it: slow down
                    await workflow.sleep(
                        self._slow_rebroadcast(), summary="wait before broadcasting again"
                    )
                self.event(f"nonce {nonce} {result.kind.value}: broadcasting the same bytes again")
                await self._broadcast(self.state.attempts[-1].fields)
                continue
            drops = 0
            if result.kind is AwaitKind.STUCK:
                if self._spend_round():
                    continue
                latest = self.state.attempts[-1].fields
                bumped = await self._bumped(latest)
                if bumped is not None:
                    self.event(f"nonce {nonce} not mined in time: bumping the fees")
                    await self._broadcast(bumped)
                continue
            return result


def _settled_status(kind: AwaitKind) -> ReservationStatus:
    return {
        AwaitKind.CONFIRMED: ReservationStatus.CONFIRMED,
        AwaitKind.TRANSFER_MISMATCH: ReservationStatus.CONFIRMED,
        AwaitKind.REVERTED: ReservationStatus.REVERTED,
    }.get(kind, ReservationStatus.CONFLICT)


@workflow.defn(name=names.PAYMENT_WORKFLOW)
class PaymentWorkflow:
    """Pay once. Start as a child with id `payment_workflow_id(payment_id)`; the result is a
    PaymentOutcome. Query `state` for the stage, `nonce_reserved` and `tx_may_exist`."""

    @workflow.init
    def __init__(self, request: PaymentRequest) -> None:
        self.request = request
        self.state = PaymentState(payment_id=request.payment_id)
        self._answer: NonceAnswer | None = None
        self._settled: ReservationStatus | None = None
        self._settled_hashes: list[str] = []
        # (needs_attention, attention_reason) as the parent last heard it (quiet-progress).
        self._parent_heard: tuple[bool, str | None] = (False, None)

    @workflow.signal(
        name=names.NONCE_ANSWER_SIGNAL, description="The hot wallet's answer to request_nonce"
    )
    def nonce_answer(self, answer: NonceAnswer) -> None:
        # Only the wallet this run asks: a late answer of another pool wallet (an earlier run
        # asked it) must never give this run a nonce of that wallet.
        wallet = answer.wallet_workflow_id
        if answer.payment_id == self.request.payment_id and (
            wallet is None or wallet == self.state.hot_wallet_workflow_id
        ):
            self._answer = answer

    @workflow.query(name=names.STATE_QUERY, description="Stage, nonce, every tx attempt, events")
    def get_state(self) -> PaymentState:
        return self.state

    def _outcome(self, status: PaymentStatus, **fields: object) -> PaymentOutcome:
        request = self.request
        outcome = PaymentOutcome.model_validate(
            {
                "payment_id": request.payment_id,
                "status": status,
                "chain": request.chain,
                "asset": request.asset,
                "recipient": request.recipient,
                "amount": request.amount,
                "nonce_reserved": self.state.nonce_reserved,
                "nonce": self.state.nonce,
                "hot_wallet": self.state.hot_wallet,
                "tx_hashes": self.state.tx_hashes,
                **fields,
            }
        )
        self.state.outcome = outcome
        self.state.stage = PaymentStage.DONE
        order_metrics.payment_finished(request.chain, request.asset, status.value)
        return outcome

    @workflow.run
    async def run(self, request: PaymentRequest) -> PaymentOutcome:
        preflight = await workflow.execute_activity(
            names.PAYMENT_PREFLIGHT_ACTIVITY,
            request,
            result_type=PreflightResult,
            start_to_close_timeout=_PREFLIGHT_TIMEOUT,
            retry_policy=_RPC_RETRY,
            summary=f"preflight {request.amount} {request.asset} on {request.chain}",
        )
        accepted = preflight.accepted
        if accepted is None:
            return self._outcome(
                PaymentStatus.REJECTED,
                reason=preflight.reason,
                rejection_code=preflight.rejection_code,
            )
        if self._past_deadline(request):
            return self._outcome(
                PaymentStatus.REJECTED,
                reason=self._deadline_reason(request, "before asking for a nonce"),
                rejection_code=RejectReason.ORDER_EXPIRED,
            )
        self.state.stage = PaymentStage.RESERVING
        self.state.hot_wallet = accepted.hot_wallet
        self.state.hot_wallet_workflow_id = accepted.hot_wallet_workflow_id
        base = {
            "chain_id": accepted.chain_id,
            "amount_base_units": accepted.amount_base_units,
            "token_address": accepted.token_address,
            "recipient": accepted.recipient,
            "asset": accepted.asset,
        }
        try:
            if workflow.patched(_PATCH_NONCE_BY_SIGNAL):
                reserved = await self._nonce_by_signal(request, accepted)
            else:
                reserved = await self._reserve_by_update(request, accepted)
        except (asyncio.CancelledError, ActivityError) as exc:
            if not is_cancelled_exception(exc):
                raise
            # Cancelled before anything was signed: give the nonce back (if it was taken).
            await workflow.get_external_workflow_handle(accepted.hot_wallet_workflow_id).signal(
                names.RELEASE_SIGNAL,
                ReleaseSignal(payment_id=request.payment_id, reason="cancelled"),
            )
            return self._outcome(PaymentStatus.CANCELLED, reason="cancelled before sending", **base)
        if reserved.nonce is None:
            return self._outcome(
                PaymentStatus.REJECTED,
                reason=reserved.reason,
                rejection_code=reserved.rejection_code or RejectReason.DAILY_CAP,
                **base,
            )
        if self._past_deadline(request) and not accepted.resume_attempts and self._settled is None:
            # The nonce came after the provider's deadline and nothing was signed: a deposit now
            # would arrive after the order expired. Give the nonce back (filled) unsigned.
            await workflow.get_external_workflow_handle(accepted.hot_wallet_workflow_id).signal(
                names.RELEASE_SIGNAL,
                ReleaseSignal(payment_id=request.payment_id, reason="deadline passed"),
            )
            return self._outcome(
                PaymentStatus.REJECTED,
                reason=self._deadline_reason(request, f"when nonce {reserved.nonce} came"),
                rejection_code=RejectReason.ORDER_EXPIRED,
                **base,
            )
        # From here on a transaction may exist: a cancellation no longer stops the payment.
        self.state.nonce_reserved = True
        self.state.tx_may_exist = True
        self.state.nonce = reserved.nonce
        if self._settled is not None and not accepted.resume_attempts:
            # A re-run of a payment whose nonce is already final: never sign again.
            self.state.needs_attention = True
            self.state.attention_reason = (
                f"the hot wallet says nonce {reserved.nonce} of this payment is already "
                f"{self._settled.value} ({', '.join(self._settled_hashes) or 'no hash'}): "
                "not signing again; a person must check"
            )
            await self._progress()
            await workflow.wait_condition(lambda: False)
        resumed = [a for a in accepted.resume_attempts if a.fields.nonce == reserved.nonce]
        if accepted.resume_attempts and not resumed:
            # Earlier runs signed at another nonce (the entity lost the reservation): signing
            # here could pay twice. Never sign; flag it and wait for a person.
            self.state.attempts = list(accepted.resume_attempts)
            self.state.needs_attention = True
            self.state.attention_reason = (
                f"earlier attempts used nonce {accepted.resume_attempts[0].fields.nonce} but the "
                f"hot wallet now gave {reserved.nonce}: not signing; a person must check"
            )
            await self._progress()
            await workflow.wait_condition(lambda: False)
        if resumed:
            self.state.attempts = resumed
        await self._progress()
        sending = asyncio.ensure_future(self._send(accepted, reserved.nonce))
        while True:
            try:
                result = await asyncio.shield(sending)
                break
            except asyncio.CancelledError:
                if sending.cancelled():
                    raise
                self._event("cancel requested while a tx may exist: ignored")
        status = {
            AwaitKind.CONFIRMED: PaymentStatus.CONFIRMED,
            AwaitKind.REVERTED: PaymentStatus.REVERTED,
            AwaitKind.TRANSFER_MISMATCH: PaymentStatus.TRANSFER_MISMATCH,
            AwaitKind.NONCE_CONFLICT: PaymentStatus.NONCE_CONFLICT,
        }[result.kind]
        try:
            await workflow.get_external_workflow_handle(accepted.hot_wallet_workflow_id).signal(
                names.NONCE_SETTLED_SIGNAL,
                NonceSettledSignal(
                    payment_id=request.payment_id,
                    nonce=reserved.nonce,
                    status=_settled_status(result.kind),
                    tx_hash=result.tx_hash,
                    note=result.detail,
                ),
            )
        except Exception as exc:  # the outcome is known; the entity only learns it (reconciles)
            self._event(f"could not tell the hot wallet (nonce_settled): {exc}")
        fee = (
            result.gas_used * result.effective_gas_price
            if result.gas_used is not None and result.effective_gas_price is not None
            else None
        )
        return self._outcome(
            status,
            reason=result.detail or None,
            tx_hash=result.tx_hash,
            block_number=result.block_number,
            block_hash=result.block_hash,
            confirmations=accepted.tuning.confirmations if result.block_number else None,
            gas_used=result.gas_used,
            fee_paid_wei=fee,
            **base,
        )

    @staticmethod
    def _past_deadline(request: PaymentRequest) -> bool:
        return request.pay_before is not None and workflow.now() >= request.pay_before

    @staticmethod
    def _deadline_reason(request: PaymentRequest, when: str) -> str:
        return (
            f"past the order's deadline for sending ({request.pay_before}) {when}: "
            "nothing signed, nothing will be sent"
        )

    async def _reserve_by_update(
        self, request: PaymentRequest, accepted: PreflightAccepted
    ) -> NonceReserveOutcome:
        """The old protocol, for runs started before `nonce-by-signal`: update-with-start."""
        reserved: NonceReserveOutcome = await workflow.execute_activity(
            names.RESERVE_NONCE_ACTIVITY,
            NonceReserveInput(
                params=self._wallet_params(accepted),
                wallet_workflow_id=accepted.hot_wallet_workflow_id,
                request=ReserveRequest(
                    payment_id=request.payment_id,
                    asset=accepted.asset,
                    amount_base_units=accepted.amount_base_units,
                    daily_cap_base_units=accepted.daily_cap_base_units,
                    payment_workflow_id=workflow.info().workflow_id,
                ),
            ),
            result_type=NonceReserveOutcome,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RESERVE_RETRY,
            summary="reserve a nonce",
        )
        return reserved

    def _wallet_params(self, accepted: PreflightAccepted) -> HotWalletParams:
        return HotWalletParams(
            chain=self.request.chain,
            chain_id=accepted.chain_id,
            address=accepted.hot_wallet,
            tuning=accepted.tuning,
        )

    async def _nonce_by_signal(
        self, request: PaymentRequest, accepted: PreflightAccepted
    ) -> NonceReserveOutcome:
        """Ask the entity (signal-with-start from an activity) and wait for its answer signal:
        the entity queues us until there is room and the funds cover us. One activity, one
        signal each way; re-asked (idempotent) only after a long silence."""
        wakeable = workflow.patched(_PATCH_CALL_BACK)
        info = workflow.info()
        ask = NonceRequestInput(
            params=self._wallet_params(accepted),
            wallet_workflow_id=accepted.hot_wallet_workflow_id,
            request=NonceRequest(
                payment_id=request.payment_id,
                payment_workflow_id=info.workflow_id,
                asset=accepted.asset,
                amount_base_units=accepted.amount_base_units,
                daily_cap_base_units=accepted.daily_cap_base_units,
                token_address=accepted.token_address,
                native_value_wei=accepted.template.value,
                gas_budget_wei=accepted.template.gas * accepted.tuning.max_fee_per_gas_cap_wei,
                rerun=info.attempt > 1
                or info.continued_run_id is not None
                or info.first_execution_run_id != info.run_id,
                wakeable=wakeable,
            ),
        )
        asked = False
        retry_after: timedelta | None = None
        silence = _REASK_AFTER  # how long an answer may take before asking again
        while True:
            if not asked:
                await workflow.execute_activity(
                    names.REQUEST_NONCE_ACTIVITY,
                    ask,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=_RPC_RETRY,
                    summary="ask the hot wallet for a nonce",
                )
                asked = True
            try:
                await workflow.wait_condition(lambda: self._answer is not None, timeout=silence)
            except TimeoutError:
                asked = False
                silence = _REASK_AFTER
                continue
            answer, self._answer = self._answer, None
            assert answer is not None
            silence = _REASK_AFTER
            later = answer.kind is NonceAnswerKind.RETRY_LATER
            if wakeable and later and answer.call_back:
                # Waitlisted: its call-back asks again (or this, if none comes in time).
                silence = timedelta(seconds=answer.retry_after_seconds or 600)
                self._queue_full(answer)
                continue
            if wakeable and later and answer.retry_after_seconds == 0:
                asked = False  # called back: the queue has room now
                self._event("called back by the hot wallet: asking again")
                continue
            if later:
                # The wallet's queue is full: ask again later, backing off (one timer and one
                # activity per re-ask; at most one per _REASK_AFTER once backed off).
                first = timedelta(seconds=answer.retry_after_seconds or 30)
                retry_after = min(retry_after * 2, _REASK_AFTER) if retry_after else first
                self._queue_full(answer)
                await workflow.sleep(retry_after)
                asked = False
                continue
            retry_after = None
            if answer.kind is NonceAnswerKind.NEEDS_PERSON:
                await self._hold_for_a_person(answer.reason or "the hot wallet needs a person")
            if answer.kind is NonceAnswerKind.WAITING_FUNDS:
                reason = answer.reason or "insufficient funds"
                if self.state.needs_attention and self.state.attention_reason == reason:
                    continue  # the same answer again (a re-ask): nothing new to tell
                self.state.needs_attention = True
                self.state.attention_reason = reason
                self._event(f"waiting for funds: {answer.reason}")
                await self._progress()
                continue
            return await self._answered(answer)

    async def _hold_for_a_person(self, reason: str) -> None:
        """An earlier run may have paid (the entity cannot tell): never sign, never end as if
        nothing was sent; a cancel is ignored like once a tx may exist."""
        self.state.tx_may_exist = True
        self.state.needs_attention = True
        self.state.attention_reason = reason
        self._event(f"not given a nonce: {reason}")
        await self._progress()
        while True:
            try:
                await workflow.wait_condition(lambda: False)
            except asyncio.CancelledError:
                self._event("cancel requested while an earlier run may have paid: ignored")

    def _event(self, line: str) -> None:
        self.state.events.append(line)
        del self.state.events[:-_EVENT_LIMIT]

    def _queue_full(self, answer: NonceAnswer) -> None:
        if len(self.state.events) == 0 or "queue is full" not in self.state.events[-1]:
            self._event(f"the hot wallet's queue is full: {answer.reason}")

    async def _answered(self, answer: NonceAnswer) -> NonceReserveOutcome:
        if self.state.needs_attention:  # it waited for funds (nothing else flags before this)
            self.state.needs_attention = False
            self.state.attention_reason = None
        if answer.kind is NonceAnswerKind.RELEASED:
            raise ApplicationError(
                f"payment {self.request.payment_id} released its nonce earlier",
                type="NonceReleased",
                non_retryable=True,
            )
        if answer.kind is NonceAnswerKind.REJECTED:
            return NonceReserveOutcome(
                rejection_code=answer.rejection_code or RejectReason.INSUFFICIENT_BALANCE,
                reason=answer.reason,
            )
        self._settled = answer.settled
        self._settled_hashes = answer.tx_hashes
        return NonceReserveOutcome(nonce=answer.nonce)

    async def _send(self, accepted: PreflightAccepted, nonce: int) -> AwaitResult:
        sender = _Sender(
            chain=self.request.chain,
            chain_id=accepted.chain_id,
            sender=accepted.hot_wallet,
            payment_id=self.request.payment_id,
            wallet_workflow_id=accepted.hot_wallet_workflow_id,
            tuning=accepted.tuning,
            expectation=TransferExpectation(
                token_address=accepted.token_address,
                sender=accepted.hot_wallet,
                recipient=accepted.recipient,
                amount_base_units=accepted.amount_base_units,
            ),
            state=self.state,
            on_progress=self._progress,
        )
        return await sender.run(accepted.template, nonce)

    async def _progress(self) -> None:
        """Tell the parent (if it asked) how far the payment is: from the nonce on, a tx may
        exist and the order must not end without knowing its fate."""
        name = self.request.progress_signal
        parent = workflow.info().parent
        if not name or parent is None:
            return
        state = self.state
        attention = (state.needs_attention, state.attention_reason)
        if workflow.patched(_PATCH_QUIET_PROGRESS):
            if attention == self._parent_heard:
                return
            self._parent_heard = attention
        latest = state.attempts[-1] if state.attempts else None
        progress = PaymentProgress(
            payment_id=state.payment_id,
            stage=state.stage.value,
            nonce_reserved=state.nonce_reserved,
            tx_may_exist=state.tx_may_exist,
            nonce=state.nonce,
            tx_hashes=state.tx_hashes,
            tx_hash=latest.tx_hash if latest else None,
            max_fee_per_gas=latest.fields.max_fee_per_gas if latest else None,
            max_priority_fee_per_gas=latest.fields.max_priority_fee_per_gas if latest else None,
            needs_attention=state.needs_attention,
            attention_reason=state.attention_reason,
            hot_wallet=state.hot_wallet,
        )
        try:
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(name, progress)
        except Exception as exc:  # the payment goes on; the parent can still read the outcome
            self._event(f"could not signal the parent: {exc}")


@workflow.defn(name=names.NONCE_FILL_WORKFLOW)
class NonceFillWorkflow:
    """Use up an abandoned nonce with a 0-value transfer to the hot wallet itself."""

    @workflow.init
    def __init__(self, request: FillRequest) -> None:
        self.request = request
        self.state = PaymentState(payment_id=request.fill_id, nonce=request.nonce)

    @workflow.query(name=names.STATE_QUERY)
    def get_state(self) -> PaymentState:
        return self.state

    @workflow.run
    async def run(self, request: FillRequest) -> FillOutcome:
        self.state.nonce_reserved = True
        self.state.tx_may_exist = True
        sender = _Sender(
            chain=request.chain,
            chain_id=request.chain_id,
            sender=request.hot_wallet,
            payment_id=request.fill_id,
            wallet_workflow_id=request.wallet_workflow_id,
            tuning=request.tuning,
            expectation=None,
            state=self.state,
        )
        template = TxTemplate(to=request.hot_wallet, value=0, data="0x", gas=21_000)
        result = await sender.run(template, request.nonce)
        note = (
            "the nonce was used by another transaction (e.g. the abandoned payment's own)"
            if result.kind is AwaitKind.NONCE_CONFLICT
            else f"0-value self-transfer {result.kind.value}"
        )
        await workflow.get_external_workflow_handle(request.wallet_workflow_id).signal(
            names.NONCE_SETTLED_SIGNAL,
            NonceSettledSignal(
                payment_id=request.fill_id,
                nonce=request.nonce,
                status=ReservationStatus.FILLED,
                tx_hash=result.tx_hash,
                note=note,
            ),
        )
        return FillOutcome(
            nonce=request.nonce,
            status=ReservationStatus.FILLED,
            tx_hash=result.tx_hash,
            tx_hashes=self.state.tx_hashes,
            note=note,
        )
