"""The measured bill of a happy order (Temporal Cloud actions), asserted from real histories in
tests/e2e/test_cost.py and used for the per-settlement-time bill in
tests/providers/test_wait_bill.py."""

from __future__ import annotations

from collections import Counter

# A happy order's actions besides its provider polls (measured; a regression fails): one start,
# the payment child (2) and an upsert only for what a list filter needs
# at once: FUNDING, TRACKING, SETTLED (sparse-upserts; one per workflow task that changed an
# attribute before, 6; one per change before that, 9).
EXPECTED_ORDER_FIXED: Counter[str] = Counter(start=1, upsert=3, child_start=2)
# The payment child: its start is billed in the order's child_start. Its activities (gas,
# broadcast, receipt) and the hot-wallet entity's signals; no progress signals to the order on
# a happy path (quiet-progress: they are sent for attention only; 2 before).
EXPECTED_PAYMENT: Counter[str] = Counter(
    start=1, activity_attempt=5, timer=1, signal=1, signal_sent=2
)


def order_bill(order: Counter[str], payment: Counter[str]) -> int:
    """Actions of a happy order: the order and its payment child (whose start is in the order's
    child_start). The order's signals are wakes (`poll_now`): a happy payment signals it nothing
    (quiet-progress)."""
    return sum(order.values()) + sum(payment.values()) - payment["start"]


# A happy order's bill besides its waits: the order (6), the payment child (9 without its start),
# the fetch and the check.
FIXED_BILL = order_bill(EXPECTED_ORDER_FIXED, EXPECTED_PAYMENT) + 2
