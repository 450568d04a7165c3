"""The order workflow's message handlers: the operator surface (state query, approve / reject /
cancel updates, poll_now) and the payment child's progress signal."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offramp import search_attributes as sa
    from offramp.chain.models import PaymentProgress
    from offramp.orders import names
    from offramp.orders.models import (
        PAYMENT_STAGES,
        SellOrderState,
        Stage,
        TimelineEntry,
        TxAttemptView,
    )

from workflows.operator_input import PAYLOAD_DOC, operator_decision
from workflows.order.patches import (
    PATCH_DEFERRED_POLL_NOW,
    PATCH_PROGRESS_WALLET_AND_ATTENTION,
)
from workflows.order.state import POLL_NOW_MIN_GAP, OrderState


class OrderHandlers(OrderState):
    @workflow.query(
        name=names.STATE_QUERY,
        description="The order's full state: stage, order facts, tx attempts, "
        "provider statuses and a timeline.",
    )
    def state(self) -> SellOrderState:
        return self._state

    @workflow.signal(
        name=names.POLL_NOW_SIGNAL,
        description="Poll the provider now (sent by the webhook receiver).",
    )
    def poll_now(self) -> None:
        if workflow.now() - self._poll_started_at >= POLL_NOW_MIN_GAP:
            self._poll_now = True
        # Too soon after a poll started: poll once when the gap ends (the wait sets a timer).
        # The condition comes first: a run that never gets such a wake carries no patch marker.
        elif not self._poll_now and workflow.patched(PATCH_DEFERRED_POLL_NOW):
            self._poll_deferred = True

    @workflow.signal(
        name=names.PAYMENT_PROGRESS_SIGNAL,
        description="Progress from the payment child (internal).",
    )
    def payment_progress(self, progress: PaymentProgress) -> None:
        if progress.needs_attention and not self._state.needs_attention:
            self._attention(f"payment: {progress.attention_reason or 'needs a person'}")
            self._attention_from_payment = True
        # One upsert for the wallet, the cleared flag and (below) the stage. The conditions come
        # first: a run that never sees such a progress carries no patch marker.
        updates = [
            *self._progress_wallet(progress),
            *self._progress_clears_attention(progress),
        ]
        if progress.tx_hash and progress.tx_hash not in self._state.tx_hashes:
            self._state.tx_hashes.append(progress.tx_hash)
            self._state.tx_attempts.append(
                TxAttemptView(
                    tx_hash=progress.tx_hash,
                    nonce=progress.nonce,
                    max_fee_per_gas=progress.max_fee_per_gas,
                    max_priority_fee_per_gas=progress.max_priority_fee_per_gas,
                    status="broadcast",
                )
            )
        if self._state.stage is Stage.FUNDING and progress.tx_hash:
            self._set_stage(Stage.CONFIRMING, f"broadcast {progress.tx_hash}", *updates)
        elif updates:
            self._upsert(*updates)
            self._publish_details()

    def _progress_wallet(self, progress: PaymentProgress) -> list[Any]:
        """The wallet that actually reserved, when it is not the one the order shows."""
        plan = self._state.plan
        wallet = progress.hot_wallet
        if plan is None or not wallet or wallet == plan.hot_wallet:
            return []
        if not workflow.patched(PATCH_PROGRESS_WALLET_AND_ATTENTION):
            return []
        self._state.plan = plan.model_copy(update={"hot_wallet": wallet})
        return [sa.HOT_WALLET.value_set(wallet)]

    def _progress_clears_attention(self, progress: PaymentProgress) -> list[Any]:
        """The payment flagged the order (e.g. waiting for funds) and no longer needs a person
        (it got its nonce): clear the flag. A flag the order raised itself stays."""
        if progress.needs_attention or not self._attention_from_payment:
            return []
        if not workflow.patched(PATCH_PROGRESS_WALLET_AND_ATTENTION):
            return []
        self._attention_from_payment = False
        self._state.needs_attention = False
        self._state.attention_reason = None
        self._state.timeline.append(
            TimelineEntry(
                at=workflow.now(), stage=self._state.stage, note="attention cleared by the payment"
            )
        )
        return [sa.NEEDS_ATTENTION.value_set(False)]

    @workflow.update(
        name=names.APPROVE_UPDATE,
        description="Approve an order waiting for review (above the threshold). " + PAYLOAD_DOC,
    )
    def approve(self, payload: Any = None) -> str:
        self._decision = (True, decision := operator_decision("approve", payload))
        return f"approved by {decision.operator}"

    @approve.validator
    def _validate_approve(self, payload: Any = None) -> None:
        operator_decision("approve", payload)
        self._require_awaiting_approval("approve")

    @workflow.update(
        name=names.REJECT_UPDATE,
        description="Reject an order waiting for review; nothing is sent. " + PAYLOAD_DOC,
    )
    def reject(self, payload: Any = None) -> str:
        self._decision = (False, decision := operator_decision("reject", payload))
        return f"rejected by {decision.operator}"

    @reject.validator
    def _validate_reject(self, payload: Any = None) -> None:
        operator_decision("reject", payload)
        self._require_awaiting_approval("reject")

    @workflow.update(
        name=names.CANCEL_UPDATE,
        description="Cancel the order. Refused once a transaction may exist (from FUNDING on). "
        + PAYLOAD_DOC,
    )
    def cancel(self, payload: Any = None) -> str:
        self._cancel = decision = operator_decision("cancel", payload)
        return f"cancel accepted from {decision.operator}"

    @cancel.validator
    def _validate_cancel(self, payload: Any = None) -> None:
        operator_decision("cancel", payload)
        stage = self._state.stage
        if stage in PAYMENT_STAGES:
            raise ValueError(
                f"cannot cancel in {stage.value}: a transaction may exist; the order is followed "
                "until its fate is known"
            )
        if stage.is_terminal:
            raise ValueError(f"the order already ended ({stage.value})")

    def _require_awaiting_approval(self, what: str) -> None:
        if self._state.stage is not Stage.AWAITING_APPROVAL:
            raise ValueError(
                f"cannot {what}: the order is {self._state.stage.value}, not waiting for approval"
            )
        if self._decision is not None:
            raise ValueError(f"cannot {what}: a decision was already made")
