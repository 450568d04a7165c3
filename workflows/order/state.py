"""The order workflow's state and its bookkeeping: stage changes, timeline, attention, search
attributes, the result. The base of every part of the workflow (handlers, waits, payment)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offramp import search_attributes as sa
    from offramp.chain.models import PaymentOutcome
    from offramp.observability import order_metrics
    from offramp.orders.models import (
        Decision,
        OrderFacts,
        Rejection,
        RejectReason,
        SellOrderInput,
        SellOrderResult,
        SellOrderState,
        Stage,
        TimelineEntry,
        TxAttemptView,
    )
    from offramp.providers import OrderSnapshot, ProviderAdapter

from workflows.order.patches import PATCH_COMBINED_UPSERTS, PATCH_SPARSE_UPSERTS
from workflows.order.render import details_markdown

# A poll_now within this long of starting a fresh poll is held until the gap ends: a storm of
# webhooks must not keep cancelling polls before they can answer.
POLL_NOW_MIN_GAP: Final = timedelta(seconds=2)


# How many rounds of the workflow's ready queue a pending upsert waits for more of its step.
_FLUSH_HOPS: Final = 3
# Stages an order passes through in moments (sparse-upserts): sent with the next upsert.
_PASSING_STAGES: Final = frozenset(
    {Stage.RECEIVED.value, Stage.VALIDATED.value, Stage.CONFIRMING.value}
)


def _filtered_on(update: Any) -> bool:
    """An update an operator's list filter must see at once (sparse-upserts)."""
    if update.key.name == sa.NEEDS_ATTENTION.name:
        return True
    return update.key.name == sa.STAGE.name and update.value not in _PASSING_STAGES


class Seen(NamedTuple):
    """A provider's order as its activity returned it (`raw`: the check activity takes it as it
    is) and the engine's view of it."""

    raw: Any
    view: OrderSnapshot


class OrderState:
    """Attributes set by the workflow's `__init__`, and the bookkeeping on them."""

    _input: SellOrderInput
    _input_error: str | None
    _adapter: ProviderAdapter
    _started_at: datetime
    _state: SellOrderState
    _decision: tuple[bool, Decision] | None
    _cancel: Decision | None
    _poll_now: bool
    _poll_deferred: bool  # a poll_now arrived inside the gap: poll when it ends
    _poll_started_at: datetime
    _ready_deadline: datetime
    _reject_reason: RejectReason | None
    _earlier_payment: PaymentOutcome | None
    _last_order: Seen | None  # the order as last checked before paying
    _attention_from_payment: bool  # the current flag was raised by the payment
    _pending_upserts: dict[str, Any]  # search-attribute updates not sent yet, by key name
    _flush_scheduled: bool  # a `_flush_upserts` is queued

    def _observe(self, order: OrderSnapshot) -> None:
        status = order.shown_status
        pay = order.instruction
        self._state.order = OrderFacts(
            blockchain=pay.chain,
            asset=pay.asset,
            amount=pay.amount,
            deposit_address=pay.deposit_address,
            user_ref=order.identity.user_ref,
            transfer_status=status,
            machine_status=order.status_code,
            human_status=order.status_text,
        )
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
        order_metrics.order_attention(self._adapter.name)
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
            self._adapter.name, stage.value, terminal=stage.is_terminal, started_at=self._started_at
        )
        self._publish_details()

    def _upsert(self, *updates: Any) -> None:
        if not workflow.patched(PATCH_COMBINED_UPSERTS):
            workflow.upsert_search_attributes(list(updates))
            return
        # Billed per command: collect this step's updates (the last value of a key wins) and
        # send them once the step yields. `run` flushes too: the end of the workflow is a
        # command added in the same step, and nothing may follow it.
        if workflow.patched(PATCH_SPARSE_UPSERTS):
            # Held until an update that a filter needs; run's end flushes what is left.
            send = any(_filtered_on(update) for update in updates)
        else:
            send = not self._pending_upserts
        for update in updates:
            self._pending_upserts[update.key.name] = update
        if send and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_upserts, _FLUSH_HOPS)

    def _flush_upserts(self, hops: int = 0) -> None:
        if hops > 0 and self._pending_upserts:
            # Behind the work this step queued (a task it started sets the next stage).
            asyncio.get_running_loop().call_soon(self._flush_upserts, hops - 1)
            return
        self._flush_scheduled = False
        if self._pending_upserts:
            updates = list(self._pending_upserts.values())
            self._pending_upserts.clear()
            workflow.upsert_search_attributes(updates)

    def _publish_details(self) -> None:
        workflow.set_current_details(details_markdown(self._state))

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


def remaining(deadline: datetime) -> timedelta:
    return max(deadline - workflow.now(), timedelta(seconds=1))
