"""Continue-as-new for a long-lived order: a run whose history is long (the server suggests it, or
it reached the input's `history_budget`) hands the order to a fresh run.

Only the two waits that can last for days check it, at the top of each round (no activity is
open then): waiting for the order to become ready, and following a paid order to its ending.
Before payment the next run starts over from the fetch (every check again, same deadlines);
after payment it goes straight back to following, with the same deadline. The carry is bounded:
the last timeline entries and provider statuses only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offramp.orders.models import OrderCarry, SellOrderState, TimelineEntry, TrackingCarry

from workflows.order.patches import PATCH_CONTINUE_AS_NEW
from workflows.order.state import OrderState

# What a carry keeps of the state's lists (the whole story is in the earlier runs' histories).
TIMELINE_KEPT: Final = 40
STATUSES_KEPT: Final = 20


class ContinueOrder(Exception):
    """Raised from a wait's round: `run` continues the order as new."""

    def __init__(self, tracking: TrackingCarry | None) -> None:
        super().__init__("continue as new")
        self.tracking = tracking


class OrderContinuation(OrderState):
    _runs: int  # runs of this order, this one included

    def _continue_if_long(
        self,
        *,
        last_status: str | None = None,
        deadline: datetime | None = None,
        unknown_since: datetime | None = None,
    ) -> None:
        """`deadline` given: following a paid order (its round's position is carried)."""
        info = workflow.info()
        long = (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.history_budget
        )
        # The condition comes first: a run that never gets long carries no patch marker.
        if not long or not workflow.patched(PATCH_CONTINUE_AS_NEW):
            return
        tracking = (
            TrackingCarry(last_status=last_status, deadline=deadline, unknown_since=unknown_since)
            if deadline is not None
            else None
        )
        raise ContinueOrder(tracking)

    async def _continue_as_new(self, tracking: TrackingCarry | None) -> None:
        """Never returns: the order goes on in a new run of this workflow id."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        length = workflow.info().get_current_history_length()
        self._note(f"continued as new after {length} events (run {self._runs + 1} next)")
        carry = OrderCarry(
            state=self._carried_state(),
            started_at=self._started_at,
            ready_deadline=self._ready_deadline,
            tracking=tracking,
            attention_from_payment=self._attention_from_payment,
            runs=self._runs,
        )
        self._flush_upserts()
        workflow.continue_as_new(continued_input(self._input.model_dump(mode="json"), carry))

    def _carried_state(self) -> SellOrderState:
        state = self._state.model_copy(deep=True)
        if len(state.timeline) > TIMELINE_KEPT:
            dropped = len(state.timeline) - TIMELINE_KEPT + 1
            note = f"{dropped} earlier entries are in the earlier runs' histories"
            first = state.timeline[0]
            state.timeline = [
                first,
                TimelineEntry(at=first.at, stage=first.stage, note=note),
                *state.timeline[-(TIMELINE_KEPT - 2) :],
            ]
        del state.provider_statuses[:-STATUSES_KEPT]
        return state


def continued_input(input: dict[str, Any], carry: OrderCarry) -> dict[str, Any]:
    """The next run's argument: the order's input with the carry beside it."""
    return {**input, "carry": carry.model_dump(mode="json")}


def split_carry(raw: Any) -> tuple[Any, OrderCarry | None]:
    """The input without its carry, and the carry (None on a first run)."""
    if not isinstance(raw, dict) or "carry" not in raw:
        return raw, None
    rest = {k: v for k, v in raw.items() if k != "carry"}
    return rest, OrderCarry.model_validate(raw["carry"])
