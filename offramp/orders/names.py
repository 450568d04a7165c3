"""Names of the order workflow, its activities, signals, updates and query: what backends, the
CLI, the webhook receiver and the payment child call it by. Committed histories hold them: never
change one; add a new name beside it."""

from __future__ import annotations

from typing import Final

# The workflow type: kept from when the engine served Kado only (running orders carry it).
WORKFLOW_TYPE: Final = "SellOrderWorkflow"

# Activities.
CHECK_SELL_ORDER_ACTIVITY: Final = "check_sell_order"
PAYMENT_OUTCOME_ACTIVITY: Final = "payment_outcome"
# Error type of PAYMENT_OUTCOME_ACTIVITY: the payment workflow closed without a result.
PAYMENT_CLOSED_WITHOUT_OUTCOME: Final = "PaymentClosedWithoutOutcome"

# Handlers.
STATE_QUERY: Final = "state"
POLL_NOW_SIGNAL: Final = "poll_now"
PAYMENT_PROGRESS_SIGNAL: Final = "payment_progress"  # from the payment child
APPROVE_UPDATE: Final = "approve"
REJECT_UPDATE: Final = "reject"
CANCEL_UPDATE: Final = "cancel"
